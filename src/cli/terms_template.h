// The starting terms file `assent terms init` writes: commented, and linting clean.
#ifndef ASSENT_CLI_TERMS_TEMPLATE_H_
#define ASSENT_CLI_TERMS_TEMPLATE_H_

#include <string_view>

namespace assent::cli {

inline constexpr std::string_view kTermsTemplate = R"yaml(# Your terms as code (docs/formats/terms.md). Every use of data is a pair (category x
# purpose) decided by one rule citing a clause of your terms: necessary, consent (off until a
# person says yes), objectable (on until they say no) or prohibited (never, whatever anyone
# chooses). `assent terms lint FILE` checks it; `assent terms show FILE` prints the matrix;
# `assent terms diff OLD NEW` exits 1 when a new version loosens a use.

# The document's id (stable across versions), this version, and when it takes effect.
terms: my-service
version: "1"
effective: "2030-01-01T00:00:00Z"

# The clauses rules cite: quote your published terms, word for word.
clauses:
  - id: "1"
    title: Providing the service
    text: >-
      We use the content you create to provide the service you asked for.
  - id: "2"
    title: Training models
    text: >-
      We train our own models on your content only if you agree, and you may withdraw at any
      time. We never let anyone else train on it.

# What data there is: a tree; a rule naming a category covers its children.
categories:
  content:
    description: What you create or share in the service.
    children:
      messages: { description: "The messages you send." }
      files: { description: "The files you upload." }

# What data is used for.
purposes:
  service:
    description: Providing the service you asked for.
  ai_training:
    description: Training machine-learning models.
    children:
      first_party: { description: "Models we train to improve our own service." }
      third_party: { description: "Models trained by or for anyone else." }

# One rule per use. A rule that asks people (consent, objectable) needs a summary: the
# sentence shown next to its switch on the settings page.
rules:
  - id: content-for-service
    categories: [content]
    purposes: [service]
    basis: necessary
    clauses: ["1"]
  - id: content-for-our-models
    summary: Let us train our own models on the messages and files you share.
    categories: [content]
    purposes: [ai_training.first_party]
    basis: consent
    clauses: ["2"]
  - id: no-third-party-training
    categories: [content]
    purposes: [ai_training.third_party]
    basis: prohibited
    clauses: ["2"]
)yaml";

}  // namespace assent::cli

#endif  // ASSENT_CLI_TERMS_TEMPLATE_H_
