// The client's exception family (mirrors clients/python/agentsdk_client/_errors.py).
//
//   AgentsdkException
//   ├── TransportException           the server could not be reached or did not answer
//   │   └── ServerUnavailableException   connection refused / timed out (retrying makes sense)
//   ├── ApiException                 the server answered with an error: Status, Code, RequestId
//   │   ├── BadRequestException          400 / 422: the message was wrong (the field is named)
//   │   ├── AuthenticationException      401: missing or wrong token
//   │   ├── PayloadTooLargeException     413: the body exceeded the server's limit
//   │   ├── RateLimitedException         429: the server is full; RetryAfter says when to retry
//   │   └── ServerErrorException         5xx
//   ├── ProtocolException            the other side does not speak this protocol
//   │   ├── VersionMismatchException     Agentsdk-Protocol majors differ (the server's message names both)
//   │   └── MsgPackException             bytes that are not protocol MessagePack
//   └── UsageException               the client was called wrongly
//       └── SpaceException               a value does not fit its space (Path names the field)
//
// No HttpRequestException, IOException or TaskCanceledException escapes a public
// method of PolicyClient: they are mapped here, with the original as InnerException.

using System;

namespace Agentsdk
{
    /// <summary>Root of every error the agentsdk client raises.</summary>
    public class AgentsdkException : Exception
    {
        public AgentsdkException(string message) : base(message) { }
        public AgentsdkException(string message, Exception inner) : base(message, inner) { }
    }

    /// <summary>The request did not complete. Retryable says whether trying again may help.</summary>
    public class TransportException : AgentsdkException
    {
        public TransportException(string message, Exception inner = null) : base(message, inner) { }
        public virtual bool Retryable { get { return true; } }
    }

    /// <summary>Nothing answered at the address (refused, unreachable, timed out).</summary>
    public class ServerUnavailableException : TransportException
    {
        public ServerUnavailableException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>The server answered with an error envelope {"error": {code, message, request_id}}.</summary>
    public class ApiException : AgentsdkException
    {
        public int Status { get; private set; }
        public string Code { get; private set; }
        public string RequestId { get; private set; }
        /// <summary>The server's own message, without the status suffix.</summary>
        public string ServerMessage { get; private set; }

        public ApiException(string message, int status, string code, string requestId)
            : base(Describe(message, status, code, requestId))
        {
            ServerMessage = message;
            Status = status;
            Code = code ?? "";
            RequestId = requestId ?? "";
        }

        public virtual bool Retryable { get { return false; } }

        internal static string Describe(string message, int status, string code, string requestId)
        {
            return message + " [" + status + (string.IsNullOrEmpty(code) ? "" : " " + code)
                   + (string.IsNullOrEmpty(requestId) ? "" : ", request " + requestId) + "]";
        }
    }

    /// <summary>400 / 422: the server rejected the content; fix the data, do not retry.</summary>
    public class BadRequestException : ApiException
    {
        public BadRequestException(string message, int status, string code, string requestId) : base(message, status, code, requestId) { }
    }

    /// <summary>401: pass the server's token (PolicyClientOptions.Token, or --token).</summary>
    public class AuthenticationException : ApiException
    {
        public AuthenticationException(string message, int status, string code, string requestId) : base(message, status, code, requestId) { }
    }

    /// <summary>413: send smaller batches (the server's limits are in /v1/info).</summary>
    public class PayloadTooLargeException : ApiException
    {
        public PayloadTooLargeException(string message, int status, string code, string requestId) : base(message, status, code, requestId) { }
    }

    /// <summary>429: the training inbox is full; send the same batch again after RetryAfter.</summary>
    public class RateLimitedException : ApiException
    {
        public TimeSpan RetryAfter { get; private set; }

        public RateLimitedException(string message, int status, string code, string requestId, TimeSpan retryAfter)
            : base(message, status, code, requestId)
        {
            RetryAfter = retryAfter;
        }

        public override bool Retryable { get { return true; } }
    }

    /// <summary>5xx: a server-side failure; retrying may help.</summary>
    public class ServerErrorException : ApiException
    {
        public ServerErrorException(string message, int status, string code, string requestId) : base(message, status, code, requestId) { }
        public override bool Retryable { get { return true; } }
    }

    /// <summary>The other side does not speak this protocol.</summary>
    public class ProtocolException : AgentsdkException
    {
        public ProtocolException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>Client and server protocol major versions differ; upgrade the older side.</summary>
    public class VersionMismatchException : ProtocolException
    {
        public int Status { get; private set; }
        public string RequestId { get; private set; }

        public VersionMismatchException(string message, int status = 0, string requestId = "") : base(message)
        {
            Status = status;
            RequestId = requestId ?? "";
        }
    }

    /// <summary>Bytes that are not one well-formed MessagePack value of this protocol.</summary>
    public class MsgPackException : ProtocolException
    {
        public MsgPackException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>The client was used wrongly; the message says what was expected.</summary>
    public class UsageException : AgentsdkException
    {
        public UsageException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>A space spec or a value does not fit; Path names the field (e.g. "observation.position").</summary>
    public class SpaceException : UsageException
    {
        public string Path { get; private set; }

        public SpaceException(string message, string path = "")
            : base(string.IsNullOrEmpty(path) ? message : path + ": " + message)
        {
            Path = path ?? "";
        }
    }

    /// <summary>Maps an HTTP error status and the server's envelope to the family (the one place).</summary>
    public static class ErrorMapper
    {
        public static AgentsdkException FromResponse(int status, object envelope, string retryAfter)
        {
            string code = "", message = null, requestId = "";
            var map = envelope as MsgMap;
            var err = map != null ? map.Get("error") as MsgMap : null;
            if (err != null)
            {
                code = err.Get("code") as string ?? "";
                message = err.Get("message") as string;
                requestId = err.Get("request_id") as string ?? "";
            }
            if (message == null) message = "server answered HTTP " + status;
            if (code == "protocol_version_mismatch")
                return new VersionMismatchException(ApiException.Describe(message, status, code, requestId), status, requestId);
            if (status == 401) return new AuthenticationException(message, status, code, requestId);
            if (status == 413) return new PayloadTooLargeException(message, status, code, requestId);
            if (status == 429)
            {
                double seconds;
                if (!double.TryParse(retryAfter, System.Globalization.NumberStyles.Float,
                                     System.Globalization.CultureInfo.InvariantCulture, out seconds) || seconds < 0)
                    seconds = 1.0;
                return new RateLimitedException(message, status, code, requestId, TimeSpan.FromSeconds(seconds));
            }
            if (status >= 500) return new ServerErrorException(message, status, code, requestId);
            return new BadRequestException(message, status, code, requestId);
        }
    }
}
