// A nightly campaign's spec (docs/campaigns.md): models x device classes x budgets x agents
// x seeds, the search options of every cell, a time limit, and the rules that compare a
// night with the one before. Parsed from JSON with every error naming the field
// ("models[1].input: ..."); unknown fields are errors too, so that a typo in an unattended
// spec is caught the first night rather than ignored every night.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/flags.h"
#include "core/status.h"

namespace acs {

struct CampaignModel {
  std::string name;       // unique in the spec; names the model's cells
  std::string path;       // a TorchScript file on the client, uploaded by the run
  std::string sha256;     // or a model already stored on the server (exactly one of both)
  Shape input;            // the model's input shape, batch first
  std::string data;       // "name:NAME" (a server dataset) or a path on the client
  std::string test_data;  // the same, optional: the test set every cell reports on
};

// How a night is compared with the one before (the report).
struct CampaignCompare {
  double relative_floor = 0.05;  // a change smaller than this share of the baseline is noise
  double noise_multiplier = 3;   // ... and so is one within this many times the repeats' spread
  std::vector<std::string> gate = {"measured_speedup", "test_accuracy"};  // regressions of these
                                                                          // fail the run (exit 3)
};

// The search space of every cell (SubmitJobRequest.space); empty lists and 0: the server's
// defaults.
struct CampaignSpace {
  std::vector<std::string> patterns;    // PatternNames()
  std::vector<int64_t> block_sizes;     // 1xN block sizes, each 2-64
  std::vector<std::string> precisions;  // PrecisionNames()
  double max_sparsity = 0;              // in [0, 0.99]
  std::vector<std::string> skip_layers;  // layers left dense
};

struct CampaignSpec {
  std::string name;  // [A-Za-z0-9._-], at most 64 characters
  std::vector<CampaignModel> models;
  std::vector<std::string> device_classes;  // empty: the server's only class
  std::vector<BudgetSpec> budgets;
  std::vector<std::string> agents;
  std::vector<int64_t> seeds = {1};
  int episodes = 30;                // of every cell's search
  int top_k = 3;                    // policies verified per cell
  bool fine_tune = false;           // recovery after compression in every cell
  int threads = 1;                  // measured threads of every cell
  CampaignSpace space;
  double time_limit_minutes = 240;  // each cell's job may run this long (not counting its time
                                    // queued); the server fails it past it
  CampaignCompare compare;
};

// One job of a campaign: a point of the spec's product.
struct CampaignCell {
  int model = 0;             // index into CampaignSpec::models
  std::string device_class;  // empty: the server's only class
  BudgetSpec budget;
  std::string agent;
  int64_t seed = 1;
  // Stable across nights and reorderings of the spec's lists: "resnet20 latency=0.5x amc
  // seed=1" (with " on CLASS" when the spec names classes). A night's cells are matched to
  // the last night's by key.
  std::string Key(const CampaignSpec& spec) const;
};

// The metrics a report compares (CampaignCompare::gate names some of them).
const std::vector<std::string>& CampaignMetrics();

// Errors: InvalidArgument naming the field and what was expected (a JSON syntax error
// with its byte offset; `source` names the text in every message, e.g. the file's path).
StatusOr<CampaignSpec> ParseCampaignSpec(const std::string& text, const std::string& source = "spec");
StatusOr<CampaignSpec> ReadCampaignSpec(const std::string& path);

// Every cell, models outermost then device classes, budgets, agents and seeds, in the
// spec's order.
std::vector<CampaignCell> CampaignCells(const CampaignSpec& spec);

// sha256 of the spec's canonical form (what the runs compare, not its formatting):
// reports say when two nights ran different specs.
std::string CampaignSpecHash(const CampaignSpec& spec);

}  // namespace acs
