"""The trainer process: RLlib learns from what clients uploaded, and exports each policy to ONNX.

The only part of agentsdk that imports Ray or torch. ``main.run_trainer`` is
the process's entry point.
"""
