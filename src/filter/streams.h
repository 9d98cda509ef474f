// The gate's byte streams: a manifest read from a file or standard input ("-"), plain, gzip or
// zstd (told apart by their magic bytes, never by name); an output written to a file or
// standard output, compressed when its name ends in .gz or .zst.
#ifndef ASSENT_FILTER_STREAMS_H_
#define ASSENT_FILTER_STREAMS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "assent/result.h"

namespace assent::internal {

// How a manifest's first bytes say it is stored: "gzip", "zstd" or "plain".
std::string_view FormatOf(std::string_view head);

class InputStream {
 public:
  virtual ~InputStream() = default;
  // Opens `path` ("-": standard input) and looks at its first bytes. kNotFound when it cannot
  // be opened.
  static Result<std::unique_ptr<InputStream>> Open(const std::string& path);
  // Bytes in memory (plain JSON Lines), which must outlive the stream.
  static std::unique_ptr<InputStream> FromMemory(std::string_view bytes);
  // Up to `n` bytes of the manifest (decompressed); 0 at its end. kInvalidArgument for a
  // damaged or truncated compressed stream, kUnavailable for a read error.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Bytes of the file read so far, and its size (0 when unknown: a pipe), for progress.
  virtual uint64_t consumed() const = 0;
  virtual uint64_t size() const = 0;
  // "plain", "gzip" or "zstd".
  virtual std::string_view format() const = 0;
  // For a plain manifest in a regular file named by its path (not standard input, whose
  // position may not be its start): its descriptor, so that it can be mapped and read at any
  // offset instead of through Read(). -1 otherwise.
  virtual int RegularFileFd() const { return -1; }
};

class OutputStream {
 public:
  virtual ~OutputStream() = default;
  // Writes to `path` ("-": standard output), compressed as `name` says (.gz: gzip, .zst: zstd).
  static Result<std::unique_ptr<OutputStream>> Open(const std::string& path,
                                                    std::string_view name);
  virtual Status Write(std::string_view bytes) = 0;
  // Flushes everything (the compressed stream's end included) and closes; `durable`: a file's
  // bytes reach the disk first (fsync).
  virtual Status Close(bool durable = false) = 0;
};

}  // namespace assent::internal

#endif  // ASSENT_FILTER_STREAMS_H_
