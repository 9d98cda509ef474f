// Boost.Beast sessions, after the "advanced server" example: an acceptor hands each
// connection to a Session that reads a request (with body and header limits and a timeout),
// asks the Handler, writes the response and reads the next one (keep-alive).
#include "server/listener.h"
#include "server/problem.h"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio.hpp>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

namespace assent::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session;

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Handler* handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  // Paces accepting when it fails (EMFILE: retrying at once would spin a core) or when the
  // connection cap is reached.
  asio::steady_timer accept_timer{ioc};
  std::chrono::milliseconds accept_backoff{0};
  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};
  asio::signal_set* signals = nullptr;
  std::optional<asio::signal_set> own_signals;  // CatchSignals
  std::mutex sessions_mu;
  std::set<std::weak_ptr<Session>, std::owner_less<std::weak_ptr<Session>>> sessions;
  // Change feeds waiting for entries: one ticker for all of them (every feed_poll it reads the
  // applied position once and wakes the feeds behind it, or due a keep-alive), so an idle
  // subscriber costs no wake-ups of its own.
  struct FeedWaiter {
    std::shared_ptr<Session> session;  // the waiting feed's owner until it is woken
    uint64_t position;
    std::chrono::steady_clock::time_point due;
  };
  std::mutex feed_mu;
  std::vector<FeedWaiter> feed_waiters;
  bool feed_ticking = false;
  asio::steady_timer feed_timer{ioc};

  Impl(ServerOptions o, Handler* h) : options(std::move(o)), handler(h), ioc(o.threads) {}
  void Accept();
  void AcceptLater(std::chrono::milliseconds delay);
  void ShedIdle(size_t how_many);
  void StopAccepting();
  void FeedWaitFor(std::shared_ptr<Session> session, uint64_t position,
                   std::chrono::steady_clock::time_point due);
  void FeedTick();
};

namespace {


}  // namespace

bool HasObsFold(std::string_view head) {
  for (size_t at = head.find('\n'); at != std::string_view::npos && at + 1 < head.size();
       at = head.find('\n', at + 1)) {
    if (head[at + 1] == ' ' || head[at + 1] == '\t') return true;
  }
  return false;
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server), timer_(stream_.get_executor()) {
    ++server_->open_connections;
  }
  ~Session() { --server_->open_connections; }

  bool idle() const { return !busy_; }
  // A waiting change feed looks again (called by the feed ticker; runs on the session's strand).
  void FeedWake() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->FeedNext(); });
  }

  void Start() { asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); }); }

  // Closes the connection if it is waiting for a request (graceful shutdown).
  void CloseIfIdle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      }
    });
  }

 private:
  void Read() {
    if (server_->stopping) return Close();
    busy_ = false;
    parser_.emplace();
    // Beast would check Content-Length against the body limit while it parses the header,
    // before the request is authenticated: no limit until OnHeader sets the request's own.
    parser_->body_limit(boost::none);
    parser_->header_limit(server_->options.header_limit);
    stream_.expires_after(server_->options.idle_timeout);
    // The header block is read whole first and checked as bytes (obs-fold), then parsed.
    ReadHeaderBytes();
  }

  // Reads until the buffer holds a whole header block (or more than the header limit).
  void ReadHeaderBytes() {
    const std::string_view have(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    if (size_t end = have.find("\r\n\r\n"); end != std::string_view::npos) {
      return OnHeaderBytes({}, end + 4);
    }
    if (have.size() > server_->options.header_limit) return OnHeaderBytes({}, have.size());
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->OnReadError(ec);
                              self->buffer_.commit(n);
                              self->ReadHeaderBytes();
                            });
  }

  void OnHeaderBytes(beast::error_code ec, std::size_t n) {
    if (ec) return OnReadError(ec);
    const std::string_view head(static_cast<const char*>(buffer_.data().data()), n);
    if (!head.ends_with("\r\n\r\n")) return OnReadError(http::error::header_limit);
    if (HasObsFold(head)) return Refuse(Problem(ProblemType::kMalformedHttp,
                                               "header fields folded over lines (obs-fold) are "
                                               "refused (RFC 9112 section 5.2)"));
    parser_->eager(false);
    beast::error_code pe;
    size_t used = parser_->put(asio::buffer(buffer_.data().data(), n), pe);
    buffer_.consume(used);
    if (!pe && !parser_->is_header_done()) pe = http::error::partial_message;
    OnHeader(pe, 0);
  }

  // Answers and closes the connection without reading the rest of the request.
  void Refuse(HttpResponse r) {
    busy_ = true;
    close_after_write_ = true;
    HttpRequest req;
    req.method = "?";
    req.target = "?";
    Write(std::move(r), req);
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    busy_ = true;
    started_ = std::chrono::steady_clock::now();
    const auto& head = parser_->get();
    // Only "chunked" is implemented as a transfer coding: anything else (gzip, "gzip,
    // chunked") would be taken as plain chunked and its bytes misread (RFC 9112 §6.1: 501).
    if (auto te = head[http::field::transfer_encoding]; !te.empty()) {
      std::string_view v(te.data(), te.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      if (!beast::iequals(v, "chunked")) {
        return Refuse(Problem(ProblemType::kTransferCodingNotImplemented,
                             "only the chunked transfer coding is implemented"));
      }
    }
    // Authentication and routing from the headers alone: an unauthenticated or unauthorised
    // request is answered before any of its body is read (or buffered).
    {
      HttpRequest preview = HeadOf(head);
      if (auto denied = server_->handler->Admit(preview)) {
        close_after_write_ = true;
        return Write(std::move(*denied), preview);
      }
      body_stream_ = server_->handler->OpenStream(preview);
      if (body_stream_) request_ = std::move(preview);
    }
    limit_ = body_stream_ ? server_->options.ndjson_body_limit : server_->options.body_limit;
    parser_->body_limit(limit_);
    if (auto length = parser_->content_length(); length && *length > limit_) {
      return OnReadError(http::error::body_limit);
    }
    stream_.expires_after(server_->options.read_timeout);
    // A client that asked to be told to go on (curl does, for bodies over 1 MiB) would
    // otherwise wait a second before sending the body.
    if (beast::iequals(head[http::field::expect], "100-continue") && !parser_->is_done()) {
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(stream_, *go_on,
                               [self = shared_from_this(), go_on](beast::error_code ec,
                                                                  std::size_t) {
                                 if (ec) return self->Close();
                                 self->body_stream_ ? self->StartStream() : self->ReadBody();
                               });
    }
    body_stream_ ? StartStream() : ReadBody();
  }

  // A streamed body (BodyStream): the response's header goes out at once (200, chunked); each
  // part of the body read is fed to the stream and what it answers is written as a chunk
  // before the next part is read, so memory stays bounded by one part whatever the size.
  void StartStream() {
    keep_alive_ = parser_->get().keep_alive();
    stream_parser_.emplace(std::move(*parser_));
    parser_.reset();
    stream_parser_->body_limit(limit_);
    stream_response_ = std::make_shared<http::response<http::empty_body>>(http::status::ok, 11);
    stream_response_->set(http::field::server, "assent");
    stream_response_->set(http::field::content_type, body_stream_->content_type());
    stream_response_->chunked(true);
    stream_response_->keep_alive(keep_alive_ && !server_->stopping);
    stream_serializer_ =
        std::make_shared<http::response_serializer<http::empty_body>>(*stream_response_);
    stream_.expires_after(server_->options.read_timeout);
    http::async_write_header(stream_, *stream_serializer_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->Close();
                               self->StreamRead();
                             });
  }

  void StreamRead() {
    if (stream_parser_->is_done()) return StreamFeed({}, true, false);
    const auto now = std::chrono::steady_clock::now();
    const auto whole = started_ + 30 * server_->options.read_timeout;
    if (now >= whole) return Close();
    stream_.expires_after(
        std::min<std::chrono::steady_clock::duration>(server_->options.read_timeout, whole - now));
    if (!part_) part_ = std::make_unique<char[]>(kPartSize);  // only streamed bodies need it
    auto& body = stream_parser_->get().body();
    body.data = part_.get();
    body.size = kPartSize;
    http::async_read_some(stream_, buffer_, *stream_parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec == http::error::need_buffer) ec = {};
                            // Mid-stream, a status can no longer be sent: a bad or cut body
                            // ends the connection without the last chunk, which the client
                            // sees as a truncated response.
                            if (ec) return self->Close();
                            const size_t got = kPartSize - self->stream_parser_->get().body().size;
                            self->StreamFeed(std::string_view(self->part_.get(), got),
                                             self->stream_parser_->is_done(), false);
                          });
  }

  void StreamFeed(std::string_view part, bool last, bool waited) {
    BodyStream::Output out = body_stream_->Feed(part, last, waited);
    if (out.wait_for_position && !waited) {
      wait_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
      wait_position_ = out.wait_for_position;
      stream_last_ = last;
      return StreamWait(std::move(out.bytes));
    }
    StreamWrite(std::move(out.bytes), last);
  }

  // Waits (without holding a thread) until the node applied the position, or the bound.
  void StreamWait(std::string so_far) {
    if (server_->handler->AppliedPosition() >= wait_position_ ||
        std::chrono::steady_clock::now() >= wait_deadline_) {
      BodyStream::Output rest = body_stream_->Feed({}, stream_last_, true);
      return StreamWrite(so_far + rest.bytes, stream_last_);
    }
    timer_.expires_after(std::chrono::milliseconds(2));
    timer_.async_wait([self = shared_from_this(), so_far = std::move(so_far)](beast::error_code) mutable {
      self->StreamWait(std::move(so_far));
    });
  }

  void StreamWrite(std::string bytes, bool last) {
    chunk_ = std::move(bytes);
    auto next = [self = shared_from_this(), last](beast::error_code ec, std::size_t) {
      if (ec) return self->Close();
      if (!last) return self->StreamRead();
      self->StreamEnd();
    };
    stream_.expires_after(std::max<std::chrono::steady_clock::duration>(
        server_->options.read_timeout, std::chrono::seconds(30)));
    if (chunk_.empty()) return next({}, 0);
    asio::async_write(stream_, http::make_chunk(asio::buffer(chunk_)), std::move(next));
  }

  void StreamEnd() {
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        HttpResponse logged;
                        logged.status = 200;
                        logged.route = self->body_stream_->route();
                        const double ms = std::chrono::duration<double, std::milli>(
                                              std::chrono::steady_clock::now() - self->started_)
                                              .count();
                        self->server_->handler->Log(self->request_, logged, ms);
                        const bool keep = self->stream_response_->keep_alive();
                        self->body_stream_.reset();
                        self->stream_parser_.reset();
                        self->stream_serializer_.reset();
                        self->stream_response_.reset();
                        self->chunk_.clear();
                        if (ec || !keep) return self->Close();
                        self->Read();
                      });
  }

  // The body arrives in parts; --read-timeout bounds the wait for each part (as nginx's
  // client_body_timeout does), so a large upload on a busy or slow link is not cut off, and
  // 30 read timeouts bound the whole body against a client that trickles it.
  void ReadBody() {
    if (parser_->is_done()) return OnRead({}, 0);
    const auto now = std::chrono::steady_clock::now();
    const auto whole = started_ + 30 * server_->options.read_timeout;
    if (now >= whole) return Close();
    stream_.expires_after(
        std::min<std::chrono::steady_clock::duration>(server_->options.read_timeout, whole - now));
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnBodyPart, shared_from_this()));
  }

  void OnBodyPart(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    ReadBody();
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      return Close();
    }
    HttpResponse r;
    if (ec == http::error::body_limit) {
      r = Problem(ProblemType::kBodyTooLarge,
                 "request body larger than " + std::to_string(limit_) +
                     " bytes");
    } else if (ec == http::error::header_limit) {
      r = Problem(ProblemType::kHeadersTooLarge, "request headers too large");
    } else {
      r = Problem(ProblemType::kMalformedHttp, "malformed HTTP request");
    }
    close_after_write_ = true;
    HttpRequest req;
    req.method = "?";
    req.target = "?";
    Write(std::move(r), req);
  }

  // The request as the handler sees it, without its body.
  template <class Header>
  HttpRequest HeadOf(const Header& msg) {
    HttpRequest r;
    r.method = std::string(msg.method_string());
    r.target = std::string(msg.target());
    for (const auto& f : msg) r.headers.emplace_back(f.name_string(), f.value());
    beast::error_code pe;
    auto ep = stream_.socket().remote_endpoint(pe);
    if (!pe) r.remote = ep.address().to_string();
    return r;
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    auto& msg = parser_->get();
    request_ = HeadOf(msg);
    request_.body = std::move(msg.body());
    keep_alive_ = msg.keep_alive();
    Dispatch(false);
  }

  void Dispatch(bool waited) {
    HandlerResult result = server_->handler->Handle(request_, waited);
    if (result.feed) {
      feed_ = std::move(result.feed);
      return StartFeed();
    }
    if (result.wait_for_position && !waited) {
      wait_deadline_ = std::chrono::steady_clock::now() + result.wait_bound;
      wait_position_ = result.wait_for_position;
      return Wait();
    }
    Write(std::move(result.response), request_);
  }

  // A change feed: the header (200, chunked NDJSON) goes out at once; then what the node has
  // applied is written a chunk at a time, each after the last was taken by the socket, and
  // between entries the feed waits (polling the applied position cheaply) and sends a blank
  // keep-alive line now and then. Flow control: while more than feed_unread_limit bytes sit
  // unread in the socket, nothing more is read from the ledger; a subscriber that then reads
  // nothing for feed_stall gets a last line naming the position to resume from and is
  // disconnected. It also ends at shutdown or when the client goes.
  void StartFeed() {
    busy_ = true;
    // A feed reads nothing more: the read buffer (Beast prepares 64 KiB) goes.
    buffer_.clear();
    buffer_.shrink_to_fit();
    // Room for the limit, one chunk and the last line: the send buffer never grows past it.
    const int sndbuf = static_cast<int>(server_->options.feed_unread_limit + (128u << 10));
    ::setsockopt(stream_.socket().native_handle(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    stream_response_ = std::make_shared<http::response<http::empty_body>>(http::status::ok, 11);
    stream_response_->set(http::field::server, "assent");
    stream_response_->set(http::field::content_type, "application/x-ndjson");
    stream_response_->set(http::field::cache_control, "no-store");
    stream_response_->chunked(true);
    stream_response_->keep_alive(false);
    stream_serializer_ =
        std::make_shared<http::response_serializer<http::empty_body>>(*stream_response_);
    stream_.expires_after(server_->options.read_timeout);
    http::async_write_header(stream_, *stream_serializer_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->FeedClosed();
                               self->feed_idle_since_ = std::chrono::steady_clock::now();
                               self->feed_progress_ = self->feed_idle_since_;
                               self->FeedNext();
                             });
  }

  // Bytes written to the socket that the peer has not taken (Linux SIOCOUTQ).
  size_t Unread() {
    int queued = 0;
    if (::ioctl(stream_.socket().native_handle(), TIOCOUTQ, &queued) != 0) return 0;
    return static_cast<size_t>(std::max(queued, 0));
  }

  // Waits (on its own timer) for a subscriber whose buffer is full to read.
  void FeedWait() {
    stream_.expires_never();  // the feed's own clocks bound it (stall, heartbeat)
    timer_.expires_after(server_->options.feed_poll);
    timer_.async_wait([self = shared_from_this()](beast::error_code) { self->FeedNext(); });
  }


  // The client closed its end (a feed's client never sends after its request).
  bool PeerClosed() {
    char byte;
    return ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

  void FeedNext() {
    if (server_->stopping) return FeedEnd();
    if (PeerClosed()) return FeedClosed();
    const auto now = std::chrono::steady_clock::now();
    const size_t unread = Unread();
    if (unread > server_->options.feed_unread_limit) {
      if (unread < feed_unread_) feed_progress_ = now;  // it reads, slowly
      feed_unread_ = unread;
      if (now - feed_progress_ >= server_->options.feed_stall) {
        chunk_ = feed_->SlowConsumerLine();
        return FeedWrite(/*last=*/true);
      }
      return FeedWait();
    }
    feed_progress_ = now;
    feed_unread_ = unread;
    chunk_.clear();
    const bool go_on = feed_->Next(server_->handler->AppliedPosition(), 64 * 1024, &chunk_);
    if (!chunk_.empty()) return FeedWrite(!go_on);
    if (!go_on) return FeedEnd();
    if (now - feed_idle_since_ >= server_->options.feed_heartbeat) {
      chunk_ = "\n";  // NDJSON readers skip blank lines; proxies see the connection alive
      return FeedWrite(false);
    }
    stream_.expires_never();  // the feed's own clocks bound it (stall, heartbeat)
    if (chunk_.capacity() > 4096) std::string().swap(chunk_);  // an idle feed holds no page
    server_->FeedWaitFor(shared_from_this(), feed_->position(),
                         feed_idle_since_ + server_->options.feed_heartbeat);
  }

  void FeedWrite(bool last) {
    feed_idle_since_ = std::chrono::steady_clock::now();
    // A write the client does not take (it always fits the send buffer): the peer is gone.
    stream_.expires_after(server_->options.feed_stall + server_->options.read_timeout);
    asio::async_write(stream_, http::make_chunk(asio::buffer(chunk_)),
                      [self = shared_from_this(), last](beast::error_code ec, std::size_t) {
                        if (ec) return self->FeedClosed();
                        if (last) return self->FeedEnd();
                        self->FeedNext();
                      });
  }

  void FeedEnd() {
    stream_.expires_after(std::chrono::seconds(1));
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        self->FeedClosed();
                      });
  }

  void FeedClosed() {
    HttpResponse logged;
    logged.status = 200;
    logged.route = feed_ ? feed_->route() : "GET /v1/changes";
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                started_).count();
    server_->handler->Log(request_, logged, ms);
    feed_.reset();
    stream_serializer_.reset();
    stream_response_.reset();
    chunk_.clear();
    Close();
  }

  // The consistency token: poll cheaply until the node applied the position, or the bound.
  void Wait() {
    if (server_->handler->AppliedPosition() >= wait_position_ ||
        std::chrono::steady_clock::now() >= wait_deadline_) {
      return Dispatch(true);
    }
    timer_.expires_after(std::chrono::milliseconds(2));
    timer_.async_wait([self = shared_from_this()](beast::error_code) { self->Wait(); });
  }

  void Write(HttpResponse r, const HttpRequest& req) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<http::status>(r.status));
    res->version(11);
    res->set(http::field::server, "assent");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive_ && !close_after_write_ && !server_->stopping);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (req.method == "HEAD") res->body().clear();  // the GET's headers, Content-Length too
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          started_)
                    .count();
    r.body.clear();
    server_->handler->Log(req, r, ms);
    response_ = res;
    // A large answer to a slow reader may take longer than a request may take to arrive.
    stream_.expires_after(std::max<std::chrono::steady_clock::duration>(
        server_->options.read_timeout, std::chrono::seconds(30)));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        self->OnWrite(ec, !res->keep_alive());
                      });
  }

  void OnWrite(beast::error_code ec, bool close) {
    response_.reset();
    if (ec || close) return Close();
    Read();
  }

  void Close() {
    busy_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> response_;
  HttpRequest request_;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  uint64_t limit_ = 0;  // the body limit of the request being read
  // A streamed body (BodyStream), while one is being answered.
  std::unique_ptr<BodyStream> body_stream_;
  std::optional<http::request_parser<http::buffer_body>> stream_parser_;
  std::shared_ptr<http::response<http::empty_body>> stream_response_;
  std::shared_ptr<http::response_serializer<http::empty_body>> stream_serializer_;
  // A streamed body's read buffer, made at its first read (not every connection has one).
  static constexpr size_t kPartSize = 64 * 1024;
  std::unique_ptr<char[]> part_;
  std::string chunk_;
  bool stream_last_ = false;
  bool busy_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point wait_deadline_;
  uint64_t wait_position_ = 0;
  std::shared_ptr<FeedStream> feed_;
  std::chrono::steady_clock::time_point feed_idle_since_;
  std::chrono::steady_clock::time_point feed_progress_;  // when it last read (or had room)
  size_t feed_unread_ = 0;
};

}  // namespace

void HttpServer::Impl::Accept() {
  if (stopping) return;
  // At the cap: close idle keep-alive connections first; if none is idle, wait for one to end
  // (new clients wait in the kernel's listen backlog meanwhile).
  if (open_connections >= options.max_connections) {
    ShedIdle(static_cast<size_t>(std::max(1, options.max_connections / 16)));
    return AcceptLater(std::chrono::milliseconds(5));
  }
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
      // EMFILE, ENFILE, ENOBUFS...: retrying at once would spin. Back off (10 ms doubling to
      // 1 s) and shed idle connections to free descriptors.
      accept_backoff = std::min(std::chrono::milliseconds(1000),
                                std::max(std::chrono::milliseconds(10), accept_backoff * 2));
      ShedIdle(8);
      return AcceptLater(accept_backoff);
    }
    accept_backoff = std::chrono::milliseconds(0);
    auto s = std::make_shared<Session>(std::move(socket), this);
    {
      std::lock_guard lock(sessions_mu);
      for (auto it = sessions.begin(); it != sessions.end();) {
        it = it->expired() ? sessions.erase(it) : std::next(it);
      }
      sessions.insert(s);
    }
    s->Start();
    Accept();
  });
}

void HttpServer::Impl::FeedWaitFor(std::shared_ptr<Session> session, uint64_t position,
                                   std::chrono::steady_clock::time_point due) {
  std::lock_guard lock(feed_mu);
  feed_waiters.push_back({std::move(session), position, due});
  if (feed_ticking) return;
  feed_ticking = true;
  asio::post(ioc, [this] { FeedTick(); });
}

void HttpServer::Impl::FeedTick() {
  const uint64_t applied = handler->AppliedPosition();
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Session>> wake;
  {
    std::lock_guard lock(feed_mu);
    auto keep = feed_waiters.begin();
    for (auto& w : feed_waiters) {
      if (stopping || applied > w.position || now >= w.due) {
        wake.push_back(std::move(w.session));
      } else {
        *keep++ = std::move(w);
      }
    }
    feed_waiters.erase(keep, feed_waiters.end());
    // Ticks stop with the last waiter (and at shutdown, so the io_context can end).
    feed_ticking = !feed_waiters.empty() && !stopping;
    if (feed_ticking) {
      feed_timer.expires_after(options.feed_poll);
      feed_timer.async_wait([this](beast::error_code) { FeedTick(); });
    }
  }
  for (auto& s : wake) s->FeedWake();
}

void HttpServer::Impl::AcceptLater(std::chrono::milliseconds delay) {
  accept_timer.expires_after(delay);
  accept_timer.async_wait([this](beast::error_code ec) {
    if (!ec && !stopping) Accept();
  });
}

void HttpServer::Impl::ShedIdle(size_t how_many) {
  std::lock_guard lock(sessions_mu);
  for (auto& w : sessions) {
    if (how_many == 0) break;
    if (auto s = w.lock(); s && s->idle()) {
      s->CloseIfIdle();
      --how_many;
    }
  }
}

void HttpServer::Impl::StopAccepting() {
  if (stopping.exchange(true)) return;
  asio::post(ioc, [this] {
    beast::error_code ec;
    acceptor.close(ec);
    accept_timer.cancel();
    if (signals) signals->cancel(ec);
    {
      std::lock_guard lock(sessions_mu);
      for (auto& w : sessions) {
        if (auto s = w.lock()) s->CloseIfIdle();
      }
    }
    FeedTick();  // waiting feeds end now (a last chunk each)
  });
}

HttpServer::HttpServer(ServerOptions options, Handler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

Result<uint16_t> HttpServer::Listen() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) return InvalidArgumentError("bad listen address '" + impl_->options.address + "'");
  if (impl_->options.max_connections <= 0) {
    // Each connection holds one descriptor; keep a reserve for the ledger, logs and the
    // listening socket.
    rlimit rl{};
    const rlim_t fds = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                           ? rl.rlim_cur : 65536;
    impl_->options.max_connections =
        static_cast<int>(std::clamp<rlim_t>(fds > 128 ? fds - 64 : fds / 2, 8, 1 << 20));
  }
  tcp::endpoint endpoint{address, impl_->options.port};
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(ErrorCode::kUnavailable, "cannot listen on " + impl_->options.address + ":" +
                                                  std::to_string(impl_->options.port) + ": " +
                                                  ec.message());
  }
  return a.local_endpoint().port();
}

void HttpServer::CatchSignals() {
  if (impl_->own_signals) return;
  impl_->own_signals.emplace(impl_->ioc, SIGINT, SIGTERM);
  impl_->signals = &*impl_->own_signals;
  impl_->own_signals->async_wait([this](beast::error_code ec, int) {
    if (!ec) impl_->StopAccepting();
  });
}

void HttpServer::Run(bool handle_signals) {
  if (handle_signals) CatchSignals();
  impl_->Accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->options.threads; ++i) {
    threads.emplace_back([this] { impl_->ioc.run(); });
  }
  impl_->ioc.run();
  for (auto& t : threads) t.join();
  impl_->signals = nullptr;
  impl_->own_signals.reset();
}

void HttpServer::Shutdown() {
  impl_->StopAccepting();
  // Without a signal handler pending, the io_context ends when the last session closes.
}

}  // namespace assent::server
