// The gate's byte streams (streams.h): plain, gzip (zlib) and zstd (libzstd).
#include "filter/streams.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace assent::internal {
namespace {

constexpr size_t kChunk = 1 << 20;

// A file descriptor read in full chunks, with the bytes already looked at given back first.
class Fd {
 public:
  Fd(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~Fd() {
    if (owned_) ::close(fd_);
  }
  Result<size_t> Read(char* buf, size_t n) {
    if (!peeked_.empty()) {
      const size_t k = std::min(n, peeked_.size() - peek_at_);
      std::memcpy(buf, peeked_.data() + peek_at_, k);
      peek_at_ += k;
      if (peek_at_ == peeked_.size()) peeked_.clear();
      return k;
    }
    for (;;) {
      const ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) {
        consumed_ += static_cast<uint64_t>(r);
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) {
        return MakeError(ErrorCode::kUnavailable, "error reading '" + name_ + "': " + std::strerror(errno));
      }
    }
  }
  // The first bytes (up to 4), kept to be read again.
  Result<std::string> Peek() {
    char head[4];
    size_t got = 0;
    while (got < sizeof head) {
      ASSENT_ASSIGN_OR_RETURN(size_t r, Read(head + got, sizeof head - got));
      if (r == 0) break;
      got += r;
    }
    peeked_.assign(head, got);
    peek_at_ = 0;
    return peeked_;
  }
  uint64_t consumed() const { return consumed_; }
  const std::string& name() const { return name_; }
  int fd() const { return fd_; }
  bool owned() const { return owned_; }  // opened by path (not standard input)

 private:
  int fd_;
  bool owned_;
  std::string name_;
  std::string peeked_;
  size_t peek_at_ = 0;
  uint64_t consumed_ = 0;
};

class PlainInput : public InputStream {
 public:
  PlainInput(std::unique_ptr<Fd> fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
  Result<size_t> Read(char* buf, size_t n) override { return fd_->Read(buf, n); }
  uint64_t consumed() const override { return fd_->consumed(); }
  uint64_t size() const override { return size_; }
  std::string_view format() const override { return "plain"; }
  int RegularFileFd() const override { return size_ && fd_->owned() ? fd_->fd() : -1; }

 private:
  std::unique_ptr<Fd> fd_;
  uint64_t size_;
};

class MemoryInput : public InputStream {
 public:
  explicit MemoryInput(std::string_view bytes) : bytes_(bytes) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, bytes_.size() - at_);
    std::memcpy(buf, bytes_.data() + at_, n);
    at_ += n;
    return n;
  }
  uint64_t consumed() const override { return at_; }
  uint64_t size() const override { return bytes_.size(); }
  std::string_view format() const override { return "plain"; }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
};

class GzipInput : public InputStream {
 public:
  GzipInput(std::unique_ptr<Fd> fd, uint64_t size) : fd_(std::move(fd)), size_(size), in_(kChunk) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;  // gzip or zlib header, detected
  }
  ~GzipInput() override { inflateEnd(&z_); }
  Result<size_t> Read(char* buf, size_t n) override {
    if (!ok_) return InternalError("zlib could not start");
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, UINT32_MAX));
    while (z_.avail_out == n && !done_) {
      if (z_.avail_in == 0) {
        ASSENT_ASSIGN_OR_RETURN(size_t r, fd_->Read(in_.data(), in_.size()));
        if (r == 0) return Damaged("it ends before the gzip stream does (truncated?)");
        z_.next_in = reinterpret_cast<Bytef*>(in_.data());
        z_.avail_in = static_cast<uInt>(r);
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // Concatenated members (as `cat a.gz b.gz` makes) continue the stream.
        if (z_.avail_in == 0) {
          ASSENT_ASSIGN_OR_RETURN(size_t r, fd_->Read(in_.data(), in_.size()));
          z_.next_in = reinterpret_cast<Bytef*>(in_.data());
          z_.avail_in = static_cast<uInt>(r);
        }
        if (z_.avail_in == 0) {
          done_ = true;
        } else if (inflateReset(&z_) != Z_OK) {
          return Damaged("a gzip member cannot be read");
        }
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Damaged(z_.msg ? z_.msg : "damaged gzip data");
      }
    }
    return n - z_.avail_out;
  }
  uint64_t consumed() const override { return fd_->consumed(); }
  uint64_t size() const override { return size_; }
  std::string_view format() const override { return "gzip"; }

 private:
  std::unexpected<Error> Damaged(const std::string& why) {
    return InvalidArgumentError("'" + fd_->name() + "' is not a readable gzip file: " + why);
  }
  std::unique_ptr<Fd> fd_;
  uint64_t size_;
  std::vector<char> in_;
  z_stream z_;
  bool ok_ = false, done_ = false;
};

class ZstdInput : public InputStream {
 public:
  ZstdInput(std::unique_ptr<Fd> fd, uint64_t size)
      : fd_(std::move(fd)), size_(size), in_(ZSTD_DStreamInSize()), dctx_(ZSTD_createDCtx()) {}
  ~ZstdInput() override { ZSTD_freeDCtx(dctx_); }
  Result<size_t> Read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (input_.pos == input_.size) {
        ASSENT_ASSIGN_OR_RETURN(size_t r, fd_->Read(in_.data(), in_.size()));
        if (r == 0) {
          if (!frame_done_) return Damaged("it ends before the zstd frame does (truncated?)");
          return size_t{0};
        }
        input_ = ZSTD_inBuffer{in_.data(), r, 0};
      }
      const size_t rc = ZSTD_decompressStream(dctx_, &out, &input_);
      if (ZSTD_isError(rc)) return Damaged(ZSTD_getErrorName(rc));
      frame_done_ = rc == 0;
    }
    return out.pos;
  }
  uint64_t consumed() const override { return fd_->consumed(); }
  uint64_t size() const override { return size_; }
  std::string_view format() const override { return "zstd"; }

 private:
  std::unexpected<Error> Damaged(const std::string& why) {
    return InvalidArgumentError("'" + fd_->name() + "' is not a readable zstd file: " + why);
  }
  std::unique_ptr<Fd> fd_;
  uint64_t size_;
  std::vector<char> in_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  ZSTD_DCtx* dctx_;
  bool frame_done_ = true;
};

class FdOutput : public OutputStream {
 public:
  FdOutput(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FdOutput() override {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  Status Write(std::string_view bytes) override {
    while (!bytes.empty()) {
      const ssize_t w = ::write(fd_, bytes.data(), bytes.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        return MakeError(ErrorCode::kUnavailable, "cannot write '" + name_ + "': " + std::strerror(errno));
      }
      bytes.remove_prefix(static_cast<size_t>(w));
    }
    return OkStatus();
  }
  Status Close(bool durable) override {
    if (!owned_ || fd_ < 0) return OkStatus();
    if (durable && ::fsync(fd_) != 0) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;
      return MakeError(ErrorCode::kUnavailable,
                       "cannot write '" + name_ + "' to the disk: " + std::strerror(e));
    }
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return MakeError(ErrorCode::kUnavailable, "cannot write '" + name_ + "'");
    return OkStatus();
  }

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

class GzipOutput : public OutputStream {
 public:
  explicit GzipOutput(std::unique_ptr<FdOutput> out) : out_(std::move(out)), buf_(kChunk) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = deflateInit2(&z_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipOutput() override { deflateEnd(&z_); }
  Status Write(std::string_view bytes) override { return Deflate(bytes, Z_NO_FLUSH); }
  Status Close(bool durable) override {
    ASSENT_RETURN_IF_ERROR(Deflate({}, Z_FINISH));
    return out_->Close(durable);
  }

 private:
  Status Deflate(std::string_view bytes, int flush) {
    if (!ok_) return InternalError("zlib could not start");
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z_.avail_in = static_cast<uInt>(bytes.size());
    int rc;
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
      z_.avail_out = static_cast<uInt>(buf_.size());
      rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return InternalError("zlib failed to compress");
      ASSENT_RETURN_IF_ERROR(out_->Write(std::string_view(buf_.data(), buf_.size() - z_.avail_out)));
    } while (z_.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return OkStatus();
  }
  std::unique_ptr<FdOutput> out_;
  std::vector<char> buf_;
  z_stream z_;
  bool ok_ = false;
};

class ZstdOutput : public OutputStream {
 public:
  explicit ZstdOutput(std::unique_ptr<FdOutput> out)
      : out_(std::move(out)), buf_(ZSTD_CStreamOutSize()), cctx_(ZSTD_createCCtx()) {}
  ~ZstdOutput() override { ZSTD_freeCCtx(cctx_); }
  Status Write(std::string_view bytes) override { return Compress(bytes, ZSTD_e_continue); }
  Status Close(bool durable) override {
    ASSENT_RETURN_IF_ERROR(Compress({}, ZSTD_e_end));
    return out_->Close(durable);
  }

 private:
  Status Compress(std::string_view bytes, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      const size_t rc = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(rc)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(rc));
      ASSENT_RETURN_IF_ERROR(out_->Write(std::string_view(buf_.data(), out.pos)));
      if (mode == ZSTD_e_end ? rc == 0 : in.pos == in.size) return OkStatus();
    }
  }
  std::unique_ptr<FdOutput> out_;
  std::vector<char> buf_;
  ZSTD_CCtx* cctx_;
};

}  // namespace

Result<std::unique_ptr<InputStream>> InputStream::Open(const std::string& path) {
  const bool stdin_ = path == "-";
  const int fd = stdin_ ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError("cannot read manifest '" + path + "': " + std::strerror(errno));
  auto in = std::make_unique<Fd>(fd, !stdin_, stdin_ ? "standard input" : path);
  uint64_t size = 0;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = static_cast<uint64_t>(st.st_size);
  ASSENT_ASSIGN_OR_RETURN(std::string head, in->Peek());
  const std::string_view format = FormatOf(head);
  if (format == "gzip") return std::unique_ptr<InputStream>(new GzipInput(std::move(in), size));
  if (format == "zstd") return std::unique_ptr<InputStream>(new ZstdInput(std::move(in), size));
  return std::unique_ptr<InputStream>(new PlainInput(std::move(in), size));
}

std::string_view FormatOf(std::string_view head) {
  uint8_t magic[4] = {0, 0, 0, 0};
  std::memcpy(magic, head.data(), std::min(head.size(), sizeof magic));
  if (magic[0] == 0x1f && magic[1] == 0x8b) return "gzip";
  if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) return "zstd";
  return "plain";
}

std::unique_ptr<InputStream> InputStream::FromMemory(std::string_view bytes) {
  return std::make_unique<MemoryInput>(bytes);
}

Result<std::unique_ptr<OutputStream>> OutputStream::Open(const std::string& path,
                                                         std::string_view name) {
  std::unique_ptr<FdOutput> fd;
  if (path == "-") {
    fd = std::make_unique<FdOutput>(1, false, "standard output");
  } else {
    const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0) {
      return MakeError(ErrorCode::kUnavailable, "cannot write '" + path + "': " + std::strerror(errno));
    }
    fd = std::make_unique<FdOutput>(f, true, path);
  }
  if (name.ends_with(".gz")) return std::unique_ptr<OutputStream>(new GzipOutput(std::move(fd)));
  if (name.ends_with(".zst")) return std::unique_ptr<OutputStream>(new ZstdOutput(std::move(fd)));
  return std::unique_ptr<OutputStream>(std::move(fd));
}

}  // namespace assent::internal
