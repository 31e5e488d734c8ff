"""The HTTP front process: it answers clients and keeps their experience until the trainer takes it.

Never imports Ray or torch (a test proves it), so it starts in well under a
second and no learner update ever stalls a request.
"""
