// Reading an events file (JSON Lines of consent events): the engine parses text and does no
// I/O; the ledger and the CLI read files.
#ifndef ASSENT_LEDGER_EVENTS_FILE_H_
#define ASSENT_LEDGER_EVENTS_FILE_H_

#include <string>
#include <vector>

#include "assent/engine.h"
#include "assent/result.h"

namespace assent {

// Reads a file and parses it (ParseEventsJsonl); kNotFound when it cannot be read.
Result<std::vector<ConsentEvent>> LoadEventsFile(const std::string& path,
                                                 std::vector<uint64_t>* lines = nullptr);

}  // namespace assent

#endif  // ASSENT_LEDGER_EVENTS_FILE_H_
