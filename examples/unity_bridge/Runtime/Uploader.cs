// Background upload of finished trajectory chunks (POST /v1/experience).
//
// One worker thread, started on the first chunk. It packs queued chunks into batches
// (at most the server's max_chunks, and well under max_body_bytes), gives each batch a
// UUID batch_id and sends the same bytes, same batch_id, until the server accepts them:
// the server counts a batch id once, so a retry after a lost answer is harmless.
// 429 waits Retry-After; 5xx and connection failures back off exponentially (with jitter).
// Any other error (401, 400, 422, version mismatch) will not get better by retrying: the
// batch is dropped, counted, and the error is rethrown from the client's next call.
// Hand-offs are signalled with Monitor.Wait/PulseAll, never by sleep-polling.

using System;
using System.Collections.Generic;
using System.Threading;

namespace Agentsdk
{
    internal sealed class Uploader
    {
        private sealed class Item
        {
            public MsgMap Chunk;
            public int Steps;
        }

        private readonly object _lock = new object();
        private readonly LinkedList<Item> _queue = new LinkedList<Item>();
        private readonly Transport _transport;
        private readonly PolicyClientOptions _opt;
        private readonly ServerInfo _info;
        private readonly Random _jitter = new Random();
        private Thread _thread;
        private bool _busy;
        private bool _stopping;
        private int _queuedSteps;
        private AgentsdkException _fatal;
        private long _stepsQueued, _stepsUploaded, _stepsDropped;

        public Uploader(Transport transport, PolicyClientOptions options, ServerInfo info)
        {
            _transport = transport;
            _opt = options;
            _info = info;
        }

        public long StepsQueued { get { return Interlocked.Read(ref _stepsQueued); } }
        public long StepsUploaded { get { return Interlocked.Read(ref _stepsUploaded); } }
        public long StepsDropped { get { return Interlocked.Read(ref _stepsDropped); } }

        public void Enqueue(MsgMap chunk, int steps)
        {
            lock (_lock)
            {
                if (_stopping) throw new UsageException("the client is shutting down; no more data is accepted");
                _queue.AddLast(new Item { Chunk = chunk, Steps = steps });
                _queuedSteps += steps;
                Interlocked.Add(ref _stepsQueued, steps);
                // Bounded memory while the server is away: the oldest (stalest) data goes first.
                while (_queuedSteps > _opt.MaxBufferedSteps && _queue.Count > 1)
                {
                    var old = _queue.First.Value;
                    _queue.RemoveFirst();
                    _queuedSteps -= old.Steps;
                    Interlocked.Add(ref _stepsDropped, old.Steps);
                }
                if (_thread == null)
                {
                    _thread = new Thread(Run) { IsBackground = true, Name = "agentsdk-uploader" };
                    _thread.Start();
                }
                Monitor.PulseAll(_lock);
            }
        }

        /// <summary>Wait until nothing is queued or in flight; false on timeout.</summary>
        public bool WaitIdle(TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            lock (_lock)
            {
                while ((_queue.Count > 0 || _busy) && !_stopping)
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) return false;
                    Monitor.Wait(_lock, left);
                }
                return _queue.Count == 0 && !_busy;
            }
        }

        /// <summary>The error that made the worker drop a batch, once (null if none).</summary>
        public AgentsdkException TakeFatalError()
        {
            lock (_lock)
            {
                var e = _fatal;
                _fatal = null;
                return e;
            }
        }

        public void Stop()
        {
            Thread t;
            lock (_lock)
            {
                _stopping = true;
                foreach (var item in _queue) Interlocked.Add(ref _stepsDropped, item.Steps);
                _queue.Clear();
                _queuedSteps = 0;
                Monitor.PulseAll(_lock);
                t = _thread;
            }
            if (t != null) t.Join(TimeSpan.FromSeconds(5));
        }

        private void Run()
        {
            while (true)
            {
                List<Item> items;
                lock (_lock)
                {
                    while (_queue.Count == 0 && !_stopping) Monitor.Wait(_lock);
                    if (_stopping) return;
                    items = new List<Item>();
                    while (_queue.Count > 0 && items.Count < Math.Max(1, _info.MaxChunks))
                    {
                        items.Add(_queue.First.Value);
                        _queue.RemoveFirst();
                    }
                    _busy = true;
                }
                try
                {
                    SendBatch(items);
                }
                finally
                {
                    lock (_lock)
                    {
                        _busy = false;
                        Monitor.PulseAll(_lock);
                    }
                }
            }
        }

        private void SendBatch(List<Item> items)
        {
            // Encode; if the body would come near the server's limit, send fewer chunks and
            // put the rest back at the front of the queue.
            long limit = Math.Max(1024, _info.MaxBodyBytes * 3 / 4);
            var encoded = new List<byte[]>();
            long size = 256;
            int steps = 0;
            int keep = 0;
            for (; keep < items.Count; keep++)
            {
                var bytes = MsgPack.Encode(items[keep].Chunk);
                if (keep > 0 && size + bytes.Length > limit) break;
                encoded.Add(bytes);
                size += bytes.Length;
                steps += items[keep].Steps;
            }
            lock (_lock)
            {
                for (int i = items.Count - 1; i >= keep; i--) _queue.AddFirst(items[i]);
                _queuedSteps -= steps;
            }

            var w = new MsgPackWriter((int)size);
            w.WriteMapHeader(3);
            w.WriteString("batch_id");
            w.WriteString(Guid.NewGuid().ToString("N"));  // reused on every retry of this batch
            w.WriteString("client_id");
            w.WriteString(_opt.ClientId);
            w.WriteString("chunks");
            w.WriteArrayHeader(encoded.Count);
            foreach (var b in encoded) w.WriteRaw(b, 0, b.Length);
            byte[] body = w.ToArray();

            TimeSpan backoff = _opt.InitialBackoff;
            while (true)
            {
                TimeSpan wait;
                try
                {
                    _transport.Post("v1/experience", body);
                    Interlocked.Add(ref _stepsUploaded, steps);
                    return;
                }
                catch (RateLimitedException e)
                {
                    wait = e.RetryAfter > TimeSpan.Zero ? e.RetryAfter : backoff;
                }
                catch (ServerErrorException)
                {
                    wait = Jitter(backoff);
                    backoff = Next(backoff);
                }
                catch (TransportException)
                {
                    wait = Jitter(backoff);
                    backoff = Next(backoff);
                }
                catch (AgentsdkException e)
                {
                    lock (_lock) _fatal = e;
                    Interlocked.Add(ref _stepsDropped, steps);
                    return;
                }
                catch (Exception e)
                {
                    lock (_lock) _fatal = new AgentsdkException("uploading experience failed unexpectedly: " + e.Message, e);
                    Interlocked.Add(ref _stepsDropped, steps);
                    return;
                }
                var until = DateTime.UtcNow + wait;
                lock (_lock)
                {
                    // Other pulses (new chunks) may wake us early: wait out the rest. Stop() ends it.
                    while (!_stopping)
                    {
                        var left = until - DateTime.UtcNow;
                        if (left <= TimeSpan.Zero) break;
                        Monitor.Wait(_lock, left);
                    }
                    if (_stopping)
                    {
                        Interlocked.Add(ref _stepsDropped, steps);
                        return;
                    }
                }
            }
        }

        private TimeSpan Next(TimeSpan b)
        {
            var n = TimeSpan.FromTicks(b.Ticks * 2);
            return n > _opt.MaxBackoff ? _opt.MaxBackoff : n;
        }

        private TimeSpan Jitter(TimeSpan b)
        {
            double f;
            lock (_jitter) f = 0.8 + 0.4 * _jitter.NextDouble();
            return TimeSpan.FromTicks((long)(b.Ticks * f));
        }
    }
}
