#include "campaigns/campaign_report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
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

// The cell's re-measured speedup (the median of its runs); nullopt when it was not
// measured again or nothing was measured.
std::optional<double> RemeasuredSpeedup(const CellResult& c) {
  if (!c.remeasure) return std::nullopt;
  const std::optional<double> again = c.remeasure->Speedup();
  if (!again || *again <= 0) return std::nullopt;
  return again;
}

// The spread (max - min) of a re-measurement's speedups; 0 below two measured runs.
double RemeasureSpread(const std::optional<CellRemeasure>& m) {
  if (!m) return 0;
  std::vector<double> s;
  for (const CellRemeasure::Run& r : m->runs) {
    if (r.measured_us > 0 && r.dense_measured_us > 0) s.push_back(r.dense_measured_us / r.measured_us);
  }
  if (s.size() < 2) return 0;
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  return *hi - *lo;
}

// The baseline cell's latest figure of `m` when it was measured again (measured_speedup
// only: the other metrics are deterministic); nullopt otherwise.
std::optional<double> BaselineRemeasured(const CellResult* base, const std::string& m) {
  if (base == nullptr || m != "measured_speedup") return std::nullopt;
  return RemeasuredSpeedup(*base);
}

MetricChange Change(const std::string& m, const CellResult& today, const CellResult* base, const CampaignCompare& cmp) {
  MetricChange c;
  c.metric = m;
  c.gated = std::find(cmp.gate.begin(), cmp.gate.end(), m) != cmp.gate.end();
  c.today = Metric(&today, m);
  c.baseline = Metric(base, m);
  // A baseline cell measured again is judged by its latest figure.
  if (const std::optional<double> again = BaselineRemeasured(base, m); again && c.baseline) {
    c.baseline_measured = c.baseline;
    c.baseline = again;
    c.baseline_remeasured = true;
  }
  c.noise = std::max(Noise(&today, m), Noise(base, m));
  // The baseline's re-measurement repeats its measurement too: its spread is noise.
  if (m == "measured_speedup" && base != nullptr) c.noise = std::max(c.noise, RemeasureSpread(base->remeasure));
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
  std::vector<std::string> remeasured, base_remeasured;
};

// The cell's measured speedup for a geomean: the re-measured one when it was measured
// again (*remeasured true), else its first measurement; nullopt when neither is known.
std::optional<double> GeomeanSpeedup(const CellResult& c, bool* remeasured) {
  const std::optional<double> again = RemeasuredSpeedup(c);
  *remeasured = again.has_value();
  if (again) return again;
  auto s = c.metrics.find("measured_speedup");
  if (s == c.metrics.end() || s->second <= 0) return std::nullopt;
  return s->second;
}

void Accumulate(const CellResult& c, bool baseline, GroupAccumulator* g) {
  if (!HasResult(c)) return;
  bool remeasured = false;
  if (const std::optional<double> s = GeomeanSpeedup(c, &remeasured)) {
    (baseline ? g->base_log_sum : g->log_sum) += std::log(*s);
    ++(baseline ? g->base_speedups : g->speedups);
    if (remeasured) (baseline ? g->base_remeasured : g->remeasured).push_back(c.key);
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
    s.remeasured = g.remeasured;
    s.baseline_remeasured = g.base_remeasured;
    std::sort(s.remeasured.begin(), s.remeasured.end());
    std::sort(s.baseline_remeasured.begin(), s.baseline_remeasured.end());
    out.push_back(s);
  }
  return out;
}

// "a -> b" of two JSON values shown as text.
std::string Text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "-";
  return j.dump();
}

std::string WorkerLine(const nlohmann::json& w) {
  std::string out = w.value("id", std::string("?"));
  const std::string name = w.value("name", std::string());
  if (!name.empty() && name != out) out += " " + name;
  out += " (" + w.value("device_class", std::string("?"));
  const std::string cpu = w.value("cpu_model", std::string()), isa = w.value("isa", std::string());
  if (!cpu.empty()) out += ", " + cpu;
  if (!isa.empty()) out += ", " + isa;
  out += ", " + w.value("version", std::string("?"));
  out += std::string(", ") + (w.value("online", false) ? "online" : "offline") + ")";
  return out;
}

}  // namespace

std::optional<double> CellRemeasure::Speedup() const {
  std::vector<double> s;
  for (const Run& r : runs) {
    if (r.measured_us > 0 && r.dense_measured_us > 0) s.push_back(r.dense_measured_us / r.measured_us);
  }
  if (s.empty()) return std::nullopt;
  std::sort(s.begin(), s.end());
  return s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
}

nlohmann::json CellRemeasure::ToJson() const {
  nlohmann::json j = {{"runs", nlohmann::json::array()}};
  for (const Run& r : runs) {
    j["runs"].push_back({{"worker_id", r.worker_id},
                         {"measured_us", r.measured_us},
                         {"dense_measured_us", r.dense_measured_us},
                         {"error", r.error}});
  }
  if (!error.empty()) j["error"] = error;
  if (std::optional<double> s = Speedup()) j["measured_speedup"] = *s;
  return j;
}

CellRemeasure CellRemeasure::FromJson(const nlohmann::json& j) {
  CellRemeasure out;
  if (!j.is_object()) {
    out.error = "the stored re-measurement does not parse";
    return out;
  }
  out.error = j.value("error", std::string());
  if (j.contains("runs") && j["runs"].is_array()) {
    for (const nlohmann::json& r : j["runs"]) {
      if (!r.is_object()) continue;
      out.runs.push_back({r.value("worker_id", std::string()), r.value("measured_us", 0.0),
                          r.value("dense_measured_us", 0.0), r.value("error", std::string())});
    }
  }
  return out;
}

const char* RemeasureOutcomeText(RemeasureOutcome o) {
  switch (o) {
    case RemeasureOutcome::kNone:
      return "";
    case RemeasureOutcome::kConfirmed:
      return "confirmed on re-measure";
    case RemeasureOutcome::kNotConfirmed:
      return "not confirmed (noise)";
    case RemeasureOutcome::kUnavailable:
      return "not re-measured: flagged on the first measurement";
  }
  return "";
}

void ApplyRemeasure(const CellResult& today, const CampaignCompare& compare, CellComparison* cell) {
  if (cell->verdict != CellVerdict::kRegressed || !today.remeasure) return;
  cell->remeasurement = today.remeasure;
  const std::optional<double> again = today.remeasure->Speedup();
  if (!again) {
    cell->remeasure = RemeasureOutcome::kUnavailable;
    return;
  }
  bool regressed = false, improved = false;
  cell->severity = 0;
  for (MetricChange& c : cell->changes) {
    if (c.metric == "measured_speedup") {
      c.remeasured = again;
      // The re-measurement's own runs are repeat measurements: their spread widens the band.
      c.noise = std::max(c.noise, RemeasureSpread(today.remeasure));
      if (c.baseline) c.band = std::max(c.band, compare.noise_multiplier * c.noise);
      // Flagged worse the first time: it stands only if the second measurement is worse
      // than the baseline by more than the band too.
      if (c.flagged < 0 && c.baseline && !(*again - *c.baseline < -c.band)) c.flagged = 0;
    }
    if (!c.gated) continue;
    regressed |= c.flagged < 0;
    improved |= c.flagged > 0;
    if (c.flagged < 0) cell->severity = std::min(cell->severity, c.relative);
  }
  cell->remeasure = regressed ? RemeasureOutcome::kConfirmed : RemeasureOutcome::kNotConfirmed;
  cell->verdict = regressed ? CellVerdict::kRegressed : improved ? CellVerdict::kImproved : CellVerdict::kUnchanged;
}

std::optional<int> DaysBetween(const std::string& from, const std::string& to) {
  auto parse = [](const std::string& d) -> std::optional<int64_t> {
    std::tm tm{};
    if (d.size() != 10 || strptime(d.c_str(), "%Y-%m-%d", &tm) == nullptr) return std::nullopt;
    return static_cast<int64_t>(timegm(&tm));
  };
  const std::optional<int64_t> a = parse(from), b = parse(to);
  if (!a || !b) return std::nullopt;
  return static_cast<int>((*b - *a) / 86400);
}

bool HeaderFromEnvironment(const std::string& environment_json, ReportHeader* header) {
  const nlohmann::json env = nlohmann::json::parse(environment_json, nullptr, false);
  if (!env.is_object()) return false;
  header->acs_version = env.value("acs_version", header->acs_version);
  header->runtime = env.value("runtime", std::string());
  header->predictors.clear();
  if (env.contains("predictors") && env["predictors"].is_object()) {
    for (const auto& [cls, v] : env["predictors"].items()) header->predictors.push_back(cls + ": version " + Text(v));
  }
  header->workers.clear();
  if (env.contains("workers") && env["workers"].is_array()) {
    for (const nlohmann::json& w : env["workers"]) {
      if (w.is_object()) header->workers.push_back(WorkerLine(w));
    }
  }
  return true;
}

std::vector<std::string> EnvironmentChanges(const std::string& baseline_json, const std::string& today_json,
                                            bool* known) {
  const nlohmann::json a = nlohmann::json::parse(baseline_json, nullptr, false);
  const nlohmann::json b = nlohmann::json::parse(today_json, nullptr, false);
  if (known) *known = a.is_object() && b.is_object();
  std::vector<std::string> out;
  if (!a.is_object() || !b.is_object()) return out;
  for (const char* k : {"acs_version", "runtime"}) {
    const nlohmann::json x = a.value(k, nlohmann::json()), y = b.value(k, nlohmann::json());
    if (x != y) out.push_back(std::string(k == std::string("runtime") ? "server runtime" : "server acs version") +
                              ": " + Text(x) + " -> " + Text(y));
  }
  const nlohmann::json pa = a.value("predictors", nlohmann::json::object());
  const nlohmann::json pb = b.value("predictors", nlohmann::json::object());
  std::set<std::string> classes;
  for (const auto& [c, v] : pa.items()) classes.insert(c);
  for (const auto& [c, v] : pb.items()) classes.insert(c);
  for (const std::string& c : classes) {
    const nlohmann::json x = pa.value(c, nlohmann::json()), y = pb.value(c, nlohmann::json());
    if (x != y) out.push_back("predictor of " + c + ": version " + Text(x) + " -> " + Text(y));
  }
  std::map<std::string, nlohmann::json> wa, wb;
  for (const nlohmann::json& w : a.value("workers", nlohmann::json::array())) {
    if (w.is_object()) wa[w.value("id", std::string())] = w;
  }
  for (const nlohmann::json& w : b.value("workers", nlohmann::json::array())) {
    if (w.is_object()) wb[w.value("id", std::string())] = w;
  }
  for (const auto& [id, w] : wa) {
    if (!wb.count(id)) out.push_back("worker gone: " + WorkerLine(w));
  }
  for (const auto& [id, w] : wb) {
    auto it = wa.find(id);
    if (it == wa.end()) {
      out.push_back("worker added: " + WorkerLine(w));
      continue;
    }
    for (const char* k : {"device_class", "cpu_model", "isa", "version", "runtime", "online"}) {
      const nlohmann::json x = it->second.value(k, nlohmann::json()), y = w.value(k, nlohmann::json());
      if (x != y) out.push_back("worker " + id + " " + k + ": " + Text(x) + " -> " + Text(y));
    }
  }
  return out;
}

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
    ApplyRemeasure(c, compare, &r.cells.back());
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
  if (baseline) {
    r.environment_changes =
        EnvironmentChanges(baseline->run.environment_json, today.run.environment_json, &r.environment_known);
    r.baseline_age_days = DaysBetween(baseline->run.date, today.run.date);
  }
  return r;
}

}  // namespace acs
