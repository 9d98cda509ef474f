// Reading an events file (events_file.h).
#include "ledger/events_file.h"

#include <fstream>
#include <sstream>

#include "engine/events_jsonl.h"

namespace assent {

Result<std::vector<ConsentEvent>> LoadEventsFile(const std::string& path,
                                                 std::vector<uint64_t>* lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read events file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read events file '" + path + "'");
  return ParseEventsJsonl(ss.str(), path, lines);
}

}  // namespace assent
