// Consent events as JSON Lines — the format `assent check --events` reads and `assent ledger
// export` writes — parsed strictly, each error naming its line.
//
// Grammar (one JSON object per line; blank lines are skipped but still counted):
//   {"subject":"u1" | "account":"a1",
//    "action":"grant" | "withdraw",
//    "categories":["content", ...], "purposes":["ai_training.first_party", ...],
//    "at":"2023-08-08T10:00:00Z",
//    "terms_version":"2023-08-07"?, "method":"settings|api|gpc|admin|import"?,
//    "rule":"rule-id"?, "actor":"..."?, "position":N?, "hash":"..."?, "kind":"consent"?,
//    "recorded_at":"..."?}
// A line whose "kind" is not "consent" is skipped (it is another kind of ledger entry).
// position defaults to the line number and must increase; "at" must not decrease.
#ifndef ASSENT_ENGINE_EVENTS_JSONL_H_
#define ASSENT_ENGINE_EVENTS_JSONL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "assent/engine.h"
#include "assent/result.h"

namespace assent {

// Writes a consent event as the JSON object history lists show: position, action,
// categories, purposes, at, terms_version, method (no party: the list is one party's).
class JsonWriter;
void WriteHistoryEvent(JsonWriter& w, const ConsentEvent& e);
// A stated notice's fields: a BCP 47 tag and 64 lowercase hex digits (kInvalidArgument).
Status CheckNoticeFields(std::string_view locale, std::string_view sha256);
// "notice": {"locale": L, "sha256": H}, or "none" when `sha256` is empty (entries, receipts,
// listings and history all write it so).
void WriteNotice(JsonWriter& w, std::string_view locale, std::string_view sha256);

// Decodes one line of the format; keeps its parser's buffers between calls, so reuse one
// decoder for many lines. Not thread-safe.
class EventLineDecoder {
 public:
  // `stored_times`: also read times as the ledger may hold them (ParseStoredTime), for
  // decoding stored entries; input from outside is held to ParseTime's range.
  explicit EventLineDecoder(bool stored_times = false);
  ~EventLineDecoder();
  // Decodes `line` into `*event`. `*is_consent` is false for an entry of another kind (then
  // only its position, if any, is set). kInvalidArgument says what is wrong (no line number).
  Status Decode(std::string_view line, ConsentEvent* event, bool* is_consent, bool* has_position);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// kInvalidArgument "FILE:LINE: what is wrong" on the first bad line; nothing is returned then.
// `lines`, when given, receives each returned event's line number.
Result<std::vector<ConsentEvent>> ParseEventsJsonl(std::string_view text, std::string_view file,
                                                   std::vector<uint64_t>* lines = nullptr);

}  // namespace assent

#endif  // ASSENT_ENGINE_EVENTS_JSONL_H_
