// The HTTP listener (Boost.Beast): sockets, parsing, limits, timeouts, keep-alive, graceful
// shutdown. It does I/O only; every request goes to the Handler, a function from request to
// response (api.cc).
#ifndef ASSENT_SERVER_LISTENER_H_
#define ASSENT_SERVER_LISTENER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <string>

#include "assent/result.h"
#include "server/http.h"

namespace assent::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port
  int threads = 2;
  uint64_t body_limit = 8 * 1024 * 1024;
  // NDJSON batches of decisions (POST /v1/decisions:batch, application/x-ndjson) may be
  // larger: they are answered line by line.
  uint64_t ndjson_body_limit = 512ull * 1024 * 1024;
  uint32_t header_limit = 16 * 1024;
  std::chrono::seconds read_timeout{30};  // for the header once it started, and each body part
  std::chrono::seconds idle_timeout{60};  // a keep-alive connection with no request
  // Open connections at most; 0: sized to the process's descriptor limit (RLIMIT_NOFILE less
  // a reserve for the ledger's files). Near it, idle keep-alive connections are closed first;
  // at it, accepting pauses until one closes (clients wait in the kernel's backlog).
  int max_connections = 0;
  // Change feeds (GET /v1/changes): how often a waiting feed looks for new entries; how often
  // an idle one sends a keep-alive line; how much a subscriber may leave unread in the socket
  // before the feed stops producing for it (its memory bound: the socket's send buffer is
  // sized to this); and how long it may then read nothing before it is disconnected, with a
  // last line naming the position to resume from.
  std::chrono::milliseconds feed_poll{20};
  std::chrono::seconds feed_heartbeat{15};
  size_t feed_unread_limit = 256u << 10;
  std::chrono::milliseconds feed_stall{30000};
};

// A response that goes on for as long as the client reads (the change feed): the listener
// asks for what follows, writes it as chunks one at a time, and waits for the node to apply
// more. Memory per subscriber: one chunk.
class FeedStream {
 public:
  virtual ~FeedStream() = default;
  // Appends to *out what follows the last position delivered, up to `applied` and about
  // `max_bytes`. Returns false when the feed must end (after appending its last line).
  virtual bool Next(uint64_t applied, size_t max_bytes, std::string* out) = 0;
  // The last position delivered (written into a chunk).
  virtual uint64_t position() const = 0;
  // The line that ends a feed whose subscriber fell too far behind (it names position()).
  virtual std::string SlowConsumerLine() const = 0;
  virtual std::string route() const = 0;
};

// What a handler answers: a response, or "ask me again once the ledger reached position N"
// (the consistency token), which the listener waits for without blocking a thread.
struct HandlerResult {
  HttpResponse response;
  uint64_t wait_for_position = 0;  // 0: respond now
  std::chrono::milliseconds wait_bound{0};
  std::shared_ptr<FeedStream> feed;  // set: stream this instead of `response`
};

// A request body answered as it arrives (NDJSON decision batches): the listener feeds the
// body in parts and writes what each part answers as chunks of one chunked response, so
// neither the request nor the response is ever held whole.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  struct Output {
    std::string bytes;               // answer bytes for the input so far, in order
    uint64_t wait_for_position = 0;  // not 0: call Feed({}, last, true) once applied (or later)
  };
  // `part` continues the body; `last` says it ends there; `waited` that the listener waited
  // for the position asked in the previous output (what is still not applied is answered 503).
  virtual Output Feed(std::string_view part, bool last, bool waited) = 0;
  virtual std::string content_type() const = 0;
  // The route it answers, for the access log ("POST /v1/decisions:batch").
  virtual std::string route() const = 0;
};

class Handler {
 public:
  // A stream for this request (headers only) if its body is answered as it arrives, else
  // nullptr (the body is read whole and given to Handle). Called after Admit allowed it.
  virtual std::unique_ptr<BodyStream> OpenStream(const HttpRequest& request) {
    (void)request;
    return nullptr;
  }
  virtual ~Handler() = default;
  // Called on a listener thread; must not block for long. `waited` is true on the call after
  // a wait (the handler then answers, 503 if the position is still not reached).
  virtual HandlerResult Handle(const HttpRequest& request, bool waited) = 0;
  // Called once a request's headers are read and before its body is: a response here (401,
  // 403, 404, 405, ...) is sent without the body being read, and the connection is closed.
  // `request` has no body. Must not block.
  virtual std::optional<HttpResponse> Admit(const HttpRequest& request) = 0;
  // The position this node has applied (to end waits early).
  virtual uint64_t AppliedPosition() const = 0;
  // One line per request for the access log.
  virtual void Log(const HttpRequest& request, const HttpResponse& response, double ms) = 0;
};

// True when a request's header block (up to its empty line) folds a field value over lines
// (obs-fold: a line starting with a space or tab). RFC 9112 §5.2 lets a server refuse it, and
// parsers that unfold it differently are a request-smuggling risk: the listener answers 400.
bool HasObsFold(std::string_view head);

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler* handler);
  ~HttpServer();

  // Binds and listens; returns the port (useful with port 0). kUnavailable when it cannot.
  Result<uint16_t> Listen();
  // Serves until Shutdown (or SIGTERM/SIGINT when `handle_signals`); then stops accepting,
  // finishes requests in flight, closes idle connections and returns.
  void Run(bool handle_signals);
  // SIGINT and SIGTERM stop the server gracefully from now on (before Run: a signal arriving
  // between start-up and Run is not lost, nor does it kill the process).
  void CatchSignals();
  // Thread-safe; returns at once.
  void Shutdown();

 public:
  struct Impl;  // defined in listener.cc; public so its sessions can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_LISTENER_H_
