// The training-data gate's lean verdict path: one purpose at one time, asked for millions of
// items. It gives what the gate needs per item — allow and reason (the deciding rule is the
// category's) — and builds no Decision, string or vector per item; Snapshot::Decide keeps the
// full answer for the API. Every verdict equals Decide's allow and reason for the same question.
//
// Each party's judgement is remembered per category in a small direct-mapped table keyed by
// the party's hash and checked against its id bytes, so a subject seen again (manifests are
// Zipf-distributed over their subjects) costs one hash and one probe instead of a trie walk.
// Not thread-safe: one per thread. The snapshot must outlive it.
#ifndef ASSENT_ENGINE_GATE_VERDICTS_H_
#define ASSENT_ENGINE_GATE_VERDICTS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "assent/engine.h"
#include "assent/result.h"
#include "common/huge_memory.h"

namespace assent {
namespace internal {

// The hashes of every party with consent events, as a blocked Bloom filter (two bits in one
// 64-bit word per party, about 16 bits a party: under 2% of absent parties pass): a party it
// rules out has no record, so its judgement is the rule's default without a walk of the
// consent state. Built once per snapshot, the first time the gate asks; read-only afterwards.
struct PartyPresence {
  std::vector<uint64_t> words;
  uint64_t mask = 0;  // word count - 1
  static uint64_t Bits(uint64_t hash) {
    return (uint64_t{1} << ((hash >> 40) & 63)) | (uint64_t{1} << ((hash >> 46) & 63));
  }
  uint64_t& Word(uint64_t hash) { return words[(hash ^ (hash >> 29)) & mask]; }
  bool MayHave(uint64_t hash) const { return MayHave(words.data(), mask, hash); }
  // The same over a copy of the words' address and mask (one dependent load fewer).
  static bool MayHave(const uint64_t* words, uint64_t mask, uint64_t hash) {
    const uint64_t bits = Bits(hash);
    return (words[(hash ^ (hash >> 29)) & mask] & bits) == bits;
  }
};

}  // namespace internal

class GateVerdicts {
 public:
  struct Verdict {
    bool allow = false;
    Reason reason = Reason::kNoConsent;
  };

  // kInvalidArgument for an unknown purpose; kFailedPrecondition when no terms are in effect
  // at `t`. `expected_items` sizes the table of remembered judgements (a small manifest needs
  // few; at most kMaxSlots).
  static Result<std::unique_ptr<GateVerdicts>> Make(const Snapshot& snap, std::string_view purpose,
                                                    Timestamp t, size_t expected_items = SIZE_MAX);

  // The category's index in the terms in effect (TermsSet-local, the same on every thread), or
  // -1 when those terms do not define it. Recently seen names are answered without a look-up.
  int32_t Category(std::string_view name);
  // How many categories the terms in effect define (indexes are below it).
  int32_t categories() const { return static_cast<int32_t>(rules_.size()); }

  // The verdict for one item of a known category. Ids must not be blank (the manifest reader
  // refuses those lines as malformed).
  Verdict Judge(int32_t category, const std::string_view* account,
                std::span<const std::string_view> subjects);

 private:
  GateVerdicts(const Snapshot& snap) : snap_(snap) {}

  struct CategoryRule {
    const Rule* rule = nullptr;  // null: unlisted
    int32_t gc = -1;
  };
  static const internal::PartyPresence& Presence(const Snapshot& snap);
  // One remembered judgement: a party (kind, id bytes) under one category.
  // One cache line each; the largest table (kMaxSlots) is one 2 MiB huge page.
  struct alignas(64) Slot {
    uint64_t hash = 0;  // 0: empty
    uint16_t category = 0;
    uint8_t kind = 0, len = 0;
    bool fails = false, erased = false;
    Reason failure = Reason::kNoConsent;
    static constexpr size_t kIdBytes = 48;  // longer ids are judged without remembering
    char id[kIdBytes];
  };
  static_assert(sizeof(Slot) == 64);
  static constexpr size_t kMaxSlots = 1 << 15;

  // Packed in one word and built arithmetically: as a struct of three bytes it was returned
  // through two byte stores and a wider load, which the CPU cannot forward (a stall per party).
  class PartyVerdict {
   public:
    PartyVerdict(bool fails, bool erased, Reason failure)
        : bits_(static_cast<uint32_t>(fails) | static_cast<uint32_t>(erased) << 8 |
                static_cast<uint32_t>(failure) << 16) {}
    bool fails() const { return bits_ & 1; }
    bool erased() const { return (bits_ >> 8) & 1; }
    Reason failure() const { return static_cast<Reason>(bits_ >> 16); }

   private:
    uint32_t bits_;
  };
  // A party the presence filter may know of (or any, when someone was erased): its remembered
  // judgement, else the snapshot's (then remembered). `hash` is its PartyHash.
  [[gnu::noinline]] PartyVerdict JudgeRecordedParty(uint64_t hash, PartyKind kind,
                                                    std::string_view id, int32_t category);

  const Snapshot& snap_;
  Timestamp t_ = 0;
  int32_t v_ = -1, p_ = -1, gp_ = -1;
  std::vector<CategoryRule> rules_;  // by local category
  struct RecentCategory {
    std::string name;
    int32_t category = -2;  // -2: empty
  };
  std::array<RecentCategory, 16> recent_{};  // by a hash of the name (Category)
  HugeArray<Slot> slots_;  // zeroed: hash 0 is empty
  size_t slot_mask_ = 0;
  const uint64_t* presence_words_ = nullptr;  // the snapshot's PartyPresence
  uint64_t presence_mask_ = 0;
  bool suppressing_ = false;  // someone was erased: every party is checked
};

}  // namespace assent

#endif  // ASSENT_ENGINE_GATE_VERDICTS_H_
