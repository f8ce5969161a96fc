#include "cli/campaign_report.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace acs {
namespace {

const std::vector<CellVerdict>& AllVerdicts() {
  static const std::vector<CellVerdict> v = {CellVerdict::kRegressed, CellVerdict::kFailed,   CellVerdict::kMissing,
                                             CellVerdict::kNew,       CellVerdict::kImproved, CellVerdict::kUnchanged,
                                             CellVerdict::kPending};
  return v;
}

bool Ended(const std::string& state) {
  return state == "succeeded" || state == "budget_not_met" || state == "failed" || state == "cancelled";
}
// A cell whose job produced a result to compare.
bool HasResult(const CellResult& c) { return c.state == "succeeded" || c.state == "budget_not_met"; }

std::optional<double> Metric(const CellResult* c, const std::string& m) {
  if (c == nullptr || !HasResult(*c)) return std::nullopt;
  auto it = c->metrics.find(m);
  if (it == c->metrics.end()) return std::nullopt;
  return it->second;
}

double Noise(const CellResult* c, const std::string& m) {
  if (c == nullptr) return 0;
  auto it = c->noise.find(m);
  return it == c->noise.end() ? 0 : std::max(0.0, it->second);
}

MetricChange Change(const std::string& m, const CellResult& today, const CellResult* base, const CampaignCompare& cmp) {
  MetricChange c;
  c.metric = m;
  c.gated = std::find(cmp.gate.begin(), cmp.gate.end(), m) != cmp.gate.end();
  c.today = Metric(&today, m);
  c.baseline = Metric(base, m);
  c.noise = std::max(Noise(&today, m), Noise(base, m));
  if (!c.today || !c.baseline) return c;
  c.delta = *c.today - *c.baseline;
  if (*c.baseline != 0) c.relative = c.delta / std::fabs(*c.baseline);
  c.band = std::max(cmp.relative_floor * std::fabs(*c.baseline), cmp.noise_multiplier * c.noise);
  if (std::fabs(c.delta) > c.band) c.flagged = c.delta < 0 ? -1 : 1;
  return c;
}

CellComparison Compare(const CellResult& today, const CellResult* base, const CampaignCompare& cmp) {
  CellComparison out;
  out.key = today.key;
  out.job_id = today.job_id;
  out.baseline_job_id = base ? base->job_id : "";
  out.state = today.state;
  out.error = today.error;
  for (const std::string& m : CampaignMetrics()) out.changes.push_back(Change(m, today, base, cmp));
  if (!Ended(today.state) && today.state != "pending") {
    out.verdict = CellVerdict::kPending;
  } else if (!HasResult(today)) {  // failed, cancelled, or never submitted ("pending")
    out.verdict = CellVerdict::kFailed;
  } else if (base == nullptr || !HasResult(*base)) {
    out.verdict = CellVerdict::kNew;
  } else {
    bool regressed = false, improved = false;
    for (const MetricChange& c : out.changes) {
      if (!c.gated) continue;
      regressed |= c.flagged < 0;
      improved |= c.flagged > 0;
      if (c.flagged < 0) out.severity = std::min(out.severity, c.relative);
    }
    out.verdict = regressed ? CellVerdict::kRegressed : improved ? CellVerdict::kImproved : CellVerdict::kUnchanged;
  }
  return out;
}

struct GroupAccumulator {
  double log_sum = 0, base_log_sum = 0, loss_sum = 0, base_loss_sum = 0;
  int speedups = 0, base_speedups = 0, losses = 0, base_losses = 0, cells = 0;
};

void Accumulate(const CellResult& c, bool baseline, GroupAccumulator* g) {
  if (!HasResult(c)) return;
  auto s = c.metrics.find("measured_speedup");
  if (s != c.metrics.end() && s->second > 0) {
    (baseline ? g->base_log_sum : g->log_sum) += std::log(s->second);
    ++(baseline ? g->base_speedups : g->speedups);
  }
  if (c.accuracy_loss) {
    (baseline ? g->base_loss_sum : g->loss_sum) += *c.accuracy_loss;
    ++(baseline ? g->base_losses : g->losses);
  }
}

std::vector<GroupSummary> Groups(const RunResults& today, const std::optional<RunResults>& baseline) {
  std::map<std::pair<std::string, std::string>, GroupAccumulator> acc;
  for (const CellResult& c : today.cells) {
    GroupAccumulator& g = acc[{c.device_class, c.agent}];
    ++g.cells;
    Accumulate(c, false, &g);
  }
  if (baseline) {
    for (const CellResult& c : baseline->cells) {
      auto it = acc.find({c.device_class, c.agent});
      if (it != acc.end()) Accumulate(c, true, &it->second);
    }
  }
  std::vector<GroupSummary> out;
  for (const auto& [k, g] : acc) {
    GroupSummary s;
    s.device_class = k.first;
    s.agent = k.second;
    s.cells = g.cells;
    if (g.speedups > 0) s.geomean_speedup = std::exp(g.log_sum / g.speedups);
    if (g.base_speedups > 0) s.baseline_geomean_speedup = std::exp(g.base_log_sum / g.base_speedups);
    if (g.losses > 0) s.mean_accuracy_loss = g.loss_sum / g.losses;
    if (g.base_losses > 0) s.baseline_mean_accuracy_loss = g.base_loss_sum / g.base_losses;
    out.push_back(s);
  }
  return out;
}

}  // namespace

const char* VerdictName(CellVerdict v) {
  switch (v) {
    case CellVerdict::kRegressed:
      return "regressed";
    case CellVerdict::kFailed:
      return "failed";
    case CellVerdict::kMissing:
      return "missing";
    case CellVerdict::kNew:
      return "new";
    case CellVerdict::kImproved:
      return "improved";
    case CellVerdict::kUnchanged:
      return "unchanged";
    case CellVerdict::kPending:
      return "pending";
  }
  return "?";
}

int CampaignReport::ExitCode() const {
  if (gated_regression) return kExitRegressed;
  const auto failed = counts.find("failed"), pending = counts.find("pending");
  if ((failed != counts.end() && failed->second > 0) || (pending != counts.end() && pending->second > 0)) {
    return kExitFailedCells;
  }
  return 0;
}

CampaignReport CompareRuns(const std::string& campaign, const CampaignCompare& compare, const RunResults& today,
                           const std::optional<RunResults>& baseline, const ReportHeader& header) {
  CampaignReport r;
  r.campaign = campaign;
  r.today = today.run;
  if (baseline) r.baseline = baseline->run;
  r.compare = compare;
  r.header = header;
  std::map<std::string, const CellResult*> base;
  if (baseline) {
    for (const CellResult& c : baseline->cells) base[c.key] = &c;
  }
  std::set<std::string> seen;
  for (const CellResult& c : today.cells) {
    seen.insert(c.key);
    auto it = base.find(c.key);
    r.cells.push_back(Compare(c, it == base.end() ? nullptr : it->second, compare));
  }
  for (const auto& [key, c] : base) {
    if (seen.count(key)) continue;
    CellComparison m;
    m.key = key;
    m.verdict = CellVerdict::kMissing;
    m.baseline_job_id = c->job_id;
    r.cells.push_back(m);
  }
  std::stable_sort(r.cells.begin(), r.cells.end(), [](const CellComparison& a, const CellComparison& b) {
    if (a.verdict != b.verdict) return a.verdict < b.verdict;
    if (a.severity != b.severity) return a.severity < b.severity;
    return a.key < b.key;
  });
  for (CellVerdict v : AllVerdicts()) r.counts[VerdictName(v)] = 0;
  for (const CellComparison& c : r.cells) {
    ++r.counts[VerdictName(c.verdict)];
    r.gated_regression |= c.verdict == CellVerdict::kRegressed;
  }
  r.groups = Groups(today, baseline);
  return r;
}

}  // namespace acs
