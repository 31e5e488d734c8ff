// HTTP for the client: one HttpClient, the protocol headers, MessagePack bodies, and the
// single place where transport failures and error envelopes become agentsdk exceptions.

using System;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;

namespace Agentsdk
{
    /// <summary>What one HTTP exchange returned (2xx only; errors are thrown).</summary>
    public sealed class Reply
    {
        public int Status;
        public object Body;       // decoded MessagePack (null for 304)
        public string ETag;
        public string RequestId;
    }

    internal sealed class Transport : IDisposable
    {
        public const string ProtocolHeader = "Agentsdk-Protocol";
        private static readonly MediaTypeHeaderValue MsgPackType = new MediaTypeHeaderValue("application/msgpack");
        private readonly HttpClient _http;
        private readonly Uri _base;

        public Transport(string address, string token, string protocolVersion, TimeSpan timeout, HttpMessageHandler handler)
        {
            if (string.IsNullOrEmpty(address)) throw new UsageException("the server address is empty; pass e.g. \"http://127.0.0.1:9900\"");
            Uri uri;
            if (!Uri.TryCreate(address.TrimEnd('/') + "/", UriKind.Absolute, out uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new UsageException("server address '" + address + "' is not an http(s) URL; pass e.g. \"http://127.0.0.1:9900\"");
            _base = uri;
            if (handler == null)
            {
                // Small request/response pairs: Nagle's algorithm and Expect: 100-continue would
                // each add tens of milliseconds per call.
                var sp = ServicePointManager.FindServicePoint(uri);
                sp.UseNagleAlgorithm = false;
                sp.Expect100Continue = false;
                sp.ConnectionLimit = Math.Max(sp.ConnectionLimit, 8);
                handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false };
            }
            _http = new HttpClient(handler) { Timeout = timeout };
            _http.DefaultRequestHeaders.ExpectContinue = false;
            _http.DefaultRequestHeaders.TryAddWithoutValidation(ProtocolHeader, protocolVersion);
            if (!string.IsNullOrEmpty(token)) _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        public Uri BaseAddress { get { return _base; } }

        public Task<Reply> GetAsync(string path, string ifNoneMatch = null)
        {
            var req = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, path));
            if (ifNoneMatch != null) req.Headers.TryAddWithoutValidation("If-None-Match", ifNoneMatch);
            return SendAsync(req);
        }

        public Task<Reply> PostAsync(string path, byte[] body)
        {
            var req = new HttpRequestMessage(HttpMethod.Post, new Uri(_base, path));
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = MsgPackType;
            req.Content = content;
            return SendAsync(req);
        }

        public Reply Get(string path, string ifNoneMatch = null) { return Sync.Run(() => GetAsync(path, ifNoneMatch)); }

        public Reply Post(string path, byte[] body) { return Sync.Run(() => PostAsync(path, body)); }

        /// <summary>GET a text endpoint (e.g. /metrics).</summary>
        public string GetText(string path)
        {
            return Sync.Run(async () =>
            {
                using (var req = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, path)))
                {
                    HttpResponseMessage resp = await Guard(path, _http.SendAsync(req)).ConfigureAwait(false);
                    using (resp)
                    {
                        byte[] bytes = await resp.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                        if ((int)resp.StatusCode >= 400) throw ErrorFor(resp, bytes);
                        return System.Text.Encoding.UTF8.GetString(bytes);
                    }
                }
            });
        }

        private async Task<Reply> SendAsync(HttpRequestMessage req)
        {
            string path = req.RequestUri.AbsolutePath;
            using (req)
            {
                HttpResponseMessage resp = await Guard(path, _http.SendAsync(req)).ConfigureAwait(false);
                using (resp)
                {
                    byte[] bytes;
                    try { bytes = await resp.Content.ReadAsByteArrayAsync().ConfigureAwait(false); }
                    catch (Exception e) { throw new TransportException("reading the answer to " + path + " failed: " + e.Message, e); }
                    int status = (int)resp.StatusCode;
                    if (status >= 400) throw ErrorFor(resp, bytes);
                    var reply = new Reply { Status = status, RequestId = Header(resp, "X-Request-Id") };
                    if (resp.Headers.ETag != null) reply.ETag = resp.Headers.ETag.ToString();
                    if (status == 304) return reply;
                    try { reply.Body = MsgPack.Decode(bytes); }
                    catch (MsgPackException e)
                    {
                        throw new ProtocolException("the answer to " + path + " (HTTP " + status + ") is not protocol MessagePack: "
                                                    + e.Message + "; is " + _base + " an agentsdk server?", e);
                    }
                    return reply;
                }
            }
        }

        private async Task<HttpResponseMessage> Guard(string path, Task<HttpResponseMessage> send)
        {
            try { return await send.ConfigureAwait(false); }
            catch (TaskCanceledException e)
            {
                throw new ServerUnavailableException("no answer from the agentsdk server at " + _base + " within "
                                                     + _http.Timeout.TotalSeconds + " s (" + path + ")", e);
            }
            catch (HttpRequestException e)
            {
                var inner = e.InnerException != null ? e.InnerException.Message : e.Message;
                throw new ServerUnavailableException("cannot reach the agentsdk server at " + _base + " (" + path + "): " + inner
                                                     + "; is `agentsdk serve` running there?", e);
            }
            catch (WebException e)
            {
                throw new ServerUnavailableException("cannot reach the agentsdk server at " + _base + " (" + path + "): " + e.Message, e);
            }
            catch (System.IO.IOException e)
            {
                throw new ServerUnavailableException("connection to the agentsdk server at " + _base + " failed (" + path + "): " + e.Message, e);
            }
        }

        private static AgentsdkException ErrorFor(HttpResponseMessage resp, byte[] bytes)
        {
            object envelope = null;
            try { envelope = MsgPack.Decode(bytes); }
            catch (MsgPackException) { /* not an envelope: the status alone is mapped */ }
            string retryAfter = null;
            var ra = resp.Headers.RetryAfter;
            if (ra != null)
            {
                if (ra.Delta.HasValue) retryAfter = ra.Delta.Value.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                else if (ra.Date.HasValue) retryAfter = Math.Max(0, (ra.Date.Value - DateTimeOffset.UtcNow).TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            return ErrorMapper.FromResponse((int)resp.StatusCode, envelope, retryAfter);
        }

        private static string Header(HttpResponseMessage resp, string name)
        {
            System.Collections.Generic.IEnumerable<string> values;
            if (resp.Headers.TryGetValues(name, out values)) foreach (var v in values) return v;
            return "";
        }

        public void Dispose() { _http.Dispose(); }
    }

    /// <summary>Blocking on a task without deadlocking under a SynchronizationContext (Unity's main thread).</summary>
    internal static class Sync
    {
        public static T Run<T>(Func<Task<T>> start)
        {
            Task<T> task = SynchronizationContext.Current == null ? start() : Task.Run(start);
            return task.GetAwaiter().GetResult();  // unwraps AggregateException
        }
    }
}
