// RenderCampaignReport: the report as JSON, Markdown and a self-contained HTML page.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "campaigns/campaign_report.h"

namespace acs {
namespace {

using nlohmann::json;

// The counts in verdict order, most severe first.
std::vector<std::pair<std::string, int>> OrderedCounts(const CampaignReport& r) {
  std::vector<std::pair<std::string, int>> out;
  for (CellVerdict v : {CellVerdict::kRegressed, CellVerdict::kFailed, CellVerdict::kMissing, CellVerdict::kNew,
                        CellVerdict::kImproved, CellVerdict::kUnchanged, CellVerdict::kPending}) {
    auto it = r.counts.find(VerdictName(v));
    out.emplace_back(VerdictName(v), it == r.counts.end() ? 0 : it->second);
  }
  return out;
}

json Opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::string Num(const std::optional<double>& v, const char* fmt = "%.4g") {
  if (!v) return "-";
  char b[64];
  std::snprintf(b, sizeof b, fmt, *v);
  return b;
}

std::string Signed(double v, const char* fmt = "%+.4g") {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string Html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Md(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

// What the top of the report says before anything else: missed nights, an old baseline,
// what changed in the environment since the baseline.
std::vector<std::string> Notices(const CampaignReport& r) {
  std::vector<std::string> out;
  if (!r.header.missed_nights.empty()) out.push_back(r.header.missed_nights);
  if (r.baseline && r.baseline_age_days && *r.baseline_age_days > 1) {
    out.push_back("the baseline (" + r.baseline->date + ") is " + std::to_string(*r.baseline_age_days) +
                  " days old: changes of the nights in between are compared at once");
  }
  if (r.baseline) {
    if (!r.environment_known) {
      out.push_back("environment diff unknown: a run stored without its environment (an older server)");
    } else if (r.environment_changes.empty()) {
      out.push_back("environment unchanged since the baseline");
    } else {
      for (const std::string& c : r.environment_changes) out.push_back("changed since the baseline: " + c);
    }
  }
  return out;
}

// "re-measured 1.21x (runs 1.19x, 1.21x, 1.24x on w-1): not confirmed (noise)".
std::string RemeasureText(const CellComparison& c) {
  if (c.remeasure == RemeasureOutcome::kNone) return "";
  std::string s;
  if (c.remeasurement) {
    const std::optional<double> again = c.remeasurement->Speedup();
    if (again) {
      std::optional<double> first;
      for (const MetricChange& m : c.changes) {
        if (m.metric == "measured_speedup") first = m.today;
      }
      s = "measured speedup " + Num(first, "%.3fx") + ", re-measured " + Num(again, "%.3fx") + " (runs";
      std::set<std::string> workers;
      for (const CellRemeasure::Run& run : c.remeasurement->runs) {
        if (run.measured_us > 0 && run.dense_measured_us > 0) {
          s += " " + Num(run.dense_measured_us / run.measured_us, "%.3fx");
          workers.insert(run.worker_id);
        }
      }
      s += " on";
      for (const std::string& w : workers) s += " " + w;
      s += ")";
    } else {
      s = "re-measurement failed";
      if (!c.remeasurement->error.empty()) s += ": " + c.remeasurement->error;
      for (const CellRemeasure::Run& run : c.remeasurement->runs) {
        if (!run.error.empty()) {
          s += (c.remeasurement->error.empty() ? ": " : "; ") + run.error;
          break;
        }
      }
    }
  }
  return s + (s.empty() ? "" : ": ") + RemeasureOutcomeText(c.remeasure);
}

// "a, b" of the keys; "-" for none.
std::string Keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "-" : out;
}

// Under the groups: which cells' re-measured speedups the geomeans use; empty when none.
std::string RemeasuredNote(const CampaignReport& r) {
  std::vector<std::string> today, baseline;
  for (const GroupSummary& g : r.groups) {
    today.insert(today.end(), g.remeasured.begin(), g.remeasured.end());
    baseline.insert(baseline.end(), g.baseline_remeasured.begin(), g.baseline_remeasured.end());
  }
  if (today.empty() && baseline.empty()) return "";
  std::string s = "The geomean speedups use the re-measured speedup (median of the runs) of the cells measured again";
  if (!today.empty()) s += "; today: " + Keys(today);
  if (!baseline.empty()) s += "; baseline: " + Keys(baseline);
  return s + ".";
}

// Which figure of the baseline cell a change is judged against: "measured" (its first
// measurement) or "re-measured" (its latest, the median of its runs); "" without a baseline.
std::string BaselineFigure(const MetricChange& m) {
  if (!m.baseline) return "";
  return m.baseline_remeasured ? "re-measured" : "measured";
}

// The baseline as a row shows it: "1.98 (re-measured; measured 1.6)" when re-measured.
std::string BaselineText(const MetricChange& m) {
  if (!m.baseline_remeasured) return Num(m.baseline);
  return Num(m.baseline) + " (re-measured; measured " + Num(m.baseline_measured) + ")";
}

json ToJson(const CampaignReport& r) {
  json j;
  j["campaign"] = r.campaign;
  j["run"] = {{"id", r.today.run_id}, {"date", r.today.date}, {"spec_hash", r.today.spec_hash}};
  j["baseline"] =
      r.baseline ? json{{"id", r.baseline->run_id}, {"date", r.baseline->date}, {"spec_hash", r.baseline->spec_hash}}
                 : json(nullptr);
  j["spec_changed"] = r.baseline && r.baseline->spec_hash != r.today.spec_hash;
  j["header"] = {{"acs_version", r.header.acs_version},
                 {"runtime", r.header.runtime},
                 {"predictors", r.header.predictors},
                 {"workers", r.header.workers}};
  j["notices"] = Notices(r);
  j["environment_changes"] = r.environment_changes;
  j["environment_known"] = r.environment_known;
  j["baseline_age_days"] = r.baseline_age_days ? json(*r.baseline_age_days) : json(nullptr);
  j["missed_nights"] = r.header.missed_nights;
  j["compare"] = {{"relative_floor", r.compare.relative_floor},
                  {"noise_multiplier", r.compare.noise_multiplier},
                  {"gate", r.compare.gate}};
  j["counts"] = r.counts;
  j["groups"] = json::array();
  for (const GroupSummary& g : r.groups) {
    j["groups"].push_back({{"device_class", g.device_class},
                           {"agent", g.agent},
                           {"cells", g.cells},
                           {"geomean_measured_speedup", Opt(g.geomean_speedup)},
                           {"baseline_geomean_measured_speedup", Opt(g.baseline_geomean_speedup)},
                           {"mean_accuracy_loss", Opt(g.mean_accuracy_loss)},
                           {"baseline_mean_accuracy_loss", Opt(g.baseline_mean_accuracy_loss)},
                           {"remeasured_cells", g.remeasured},
                           {"baseline_remeasured_cells", g.baseline_remeasured}});
  }
  j["cells"] = json::array();
  for (const CellComparison& c : r.cells) {
    json cell = {{"key", c.key},       {"verdict", VerdictName(c.verdict)},
                 {"job_id", c.job_id}, {"baseline_job_id", c.baseline_job_id},
                 {"state", c.state},   {"error", c.error}};
    cell["metrics"] = json::object();
    for (const MetricChange& m : c.changes) {
      cell["metrics"][m.metric] = {{"baseline", Opt(m.baseline)},
                                   {"today", Opt(m.today)},
                                   {"delta", m.baseline && m.today ? json(m.delta) : json(nullptr)},
                                   {"relative", m.baseline && m.today ? json(m.relative) : json(nullptr)},
                                   {"noise", m.noise},
                                   {"band", m.band},
                                   {"flagged", m.flagged < 0   ? "regressed"
                                               : m.flagged > 0 ? "improved"
                                                               : ""},
                                   {"gated", m.gated},
                                   {"remeasured", Opt(m.remeasured)},
                                   {"baseline_figure", BaselineFigure(m)},
                                   {"baseline_measured", Opt(m.baseline_measured)}};
    }
    if (c.remeasure != RemeasureOutcome::kNone) {
      json rm = c.remeasurement ? c.remeasurement->ToJson() : json::object();
      rm["outcome"] = RemeasureOutcomeText(c.remeasure);
      cell["remeasure"] = rm;
    }
    j["cells"].push_back(cell);
  }
  j["gated_regression"] = r.gated_regression;
  j["exit_code"] = r.ExitCode();
  return j;
}

// "0.91 -> 0.85 (-6.6%, band 0.046)" for the gated and flagged changes of a cell.
std::string ChangeText(const MetricChange& m) {
  if (!m.baseline && !m.today) return "";
  std::string s = m.metric + " " + BaselineText(m) + " -> " + Num(m.today);
  if (m.baseline && m.today) s += " (" + Signed(100 * m.relative, "%+.1f") + "%, band " + Num(m.band, "%.3g") + ")";
  if (m.flagged != 0) s += m.flagged < 0 ? " REGRESSED" : " improved";
  return s;
}

std::string JobRef(const std::string& id, const std::string& link, bool html) {
  if (id.empty()) return "-";
  if (link.empty()) return id;
  return html ? "<a href=\"" + Html(link + id) + "\">" + Html(id) + "</a>" : "[" + id + "](" + link + id + ")";
}

std::string Markdown(const CampaignReport& r, const std::string& link) {
  std::ostringstream o;
  o << "# Campaign " << r.campaign << " on " << r.today.date << "\n\n";
  const std::vector<std::string> notices = Notices(r);
  if (!notices.empty()) o << "> **Before the cells:**\n>\n";
  for (const std::string& n : notices) o << "> - " << Md(n) << "\n";
  if (!notices.empty()) o << "\n";
  o << "- run: " << r.today.run_id << ", spec " << r.today.spec_hash.substr(0, 12) << "\n";
  if (r.baseline) {
    o << "- baseline: " << r.baseline->date << " (" << r.baseline->run_id << ")"
      << (r.baseline->spec_hash != r.today.spec_hash ? ", spec changed since" : ", same spec") << "\n";
  } else {
    o << "- baseline: none (the campaign's first run)\n";
  }
  o << "- acs " << r.header.acs_version << "\n";
  if (!r.header.runtime.empty()) o << "- server runtime " << r.header.runtime << "\n";
  for (const std::string& p : r.header.predictors) o << "- predictor " << p << "\n";
  for (const std::string& w : r.header.workers) o << "- worker " << w << "\n";
  o << "- flagged beyond " << 100 * r.compare.relative_floor << "% and " << r.compare.noise_multiplier
    << "x the repeat noise; gated:";
  for (const std::string& g : r.compare.gate) o << " " << g;
  o << "\n\n| ";
  for (const auto& [k, v] : OrderedCounts(r)) o << k << " | ";
  o << "\n|";
  for (size_t i = 0; i < r.counts.size(); ++i) o << "---|";
  o << "\n| ";
  for (const auto& [k, v] : OrderedCounts(r)) o << v << " | ";
  o << "\n\n## By device class and agent\n\n| device class | agent | cells | geomean speedup | baseline | mean "
       "accuracy loss | baseline | re-measured |\n|---|---|---|---|---|---|---|---|\n";
  for (const GroupSummary& g : r.groups) {
    o << "| " << Md(g.device_class) << " | " << g.agent << " | " << g.cells << " | " << Num(g.geomean_speedup, "%.3fx")
      << " | " << Num(g.baseline_geomean_speedup, "%.3fx") << " | " << Num(g.mean_accuracy_loss, "%.4f") << " | "
      << Num(g.baseline_mean_accuracy_loss, "%.4f") << " | " << Md(Keys(g.remeasured)) << " |\n";
  }
  if (const std::string note = RemeasuredNote(r); !note.empty()) o << "\n" << Md(note) << "\n";
  o << "\n## Cells, most severe first\n\n| cell | verdict | job | baseline job | changes |\n|---|---|---|---|---|\n";
  for (const CellComparison& c : r.cells) {
    std::string changes;
    for (const MetricChange& m : c.changes) {
      const std::string t = ChangeText(m);
      if (!t.empty()) changes += (changes.empty() ? "" : "; ") + t;
    }
    const std::string again = RemeasureText(c);
    if (!again.empty()) changes += (changes.empty() ? "" : "; ") + again;
    if (!c.error.empty()) changes += (changes.empty() ? "" : "; ") + std::string("error: ") + c.error;
    o << "| " << Md(c.key) << " | " << VerdictName(c.verdict) << " | " << JobRef(c.job_id, link, false) << " | "
      << JobRef(c.baseline_job_id, link, false) << " | " << Md(changes) << " |\n";
  }
  return o.str();
}

// A horizontal bar chart (inline SVG) of one value per label, baseline as a tick.
std::string BarChart(const std::string& title, const std::vector<std::string>& labels,
                     const std::vector<std::optional<double>>& values,
                     const std::vector<std::optional<double>>& baselines) {
  double top = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i]) top = std::max(top, std::fabs(*values[i]));
    if (baselines[i]) top = std::max(top, std::fabs(*baselines[i]));
  }
  if (top <= 0) top = 1;
  size_t longest = 0;
  for (const std::string& l : labels) longest = std::max(longest, l.size());
  const int row = 22, left = 10 + 7 * static_cast<int>(longest), width = 360;
  std::ostringstream o;
  o << "<figure><figcaption>" << Html(title) << " (bar: today, tick: baseline)</figcaption><svg xmlns=\"http://"
    << "www.w3.org/2000/svg\" width=\"" << left + width + 90 << "\" height=\"" << row * labels.size() + 8 << "\">";
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = static_cast<int>(i) * row + 4;
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << Html(labels[i]) << "</text>";
    const int tick = baselines[i] ? left + static_cast<int>(width * std::fabs(*baselines[i]) / top) : 0;
    if (baselines[i]) {
      o << "<line x1=\"" << tick << "\" x2=\"" << tick << "\" y1=\"" << y - 2 << "\" y2=\"" << y + 18
        << "\" stroke=\"#222\" stroke-width=\"2\"/>";
    }
    if (values[i]) {
      const int w = static_cast<int>(width * std::fabs(*values[i]) / top);
      o << "<rect x=\"" << left << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"16\" fill=\"#4a7bd0\"/>";
      o << "<text x=\"" << std::max(left + w, tick) + 5 << "\" y=\"" << y + 13 << "\">" << Num(values[i], "%.3g")
        << "</text>";
    }
  }
  o << "</svg></figure>\n";
  return o.str();
}

std::string HtmlPage(const CampaignReport& r, const std::string& link) {
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Campaign " << Html(r.campaign) << " "
    << Html(r.today.date) << "</title><style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
    << "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}.regressed{background:#fdd}.failed{background:"
    << "#fec}.improved{background:#dfd}.missing,.new{background:#eef}.notices{border:2px solid #c90;padding:4px "
    << "10px;margin-bottom:1em}svg text{font:12px sans-serif}</style></head>"
    << "<body><h1>Campaign " << Html(r.campaign) << " on " << Html(r.today.date) << "</h1>";
  const std::vector<std::string> notices = Notices(r);
  if (!notices.empty()) {
    o << "<div class=\"notices\"><b>Before the cells</b><ul>";
    for (const std::string& n : notices) o << "<li>" << Html(n) << "</li>";
    o << "</ul></div>";
  }
  o << "<ul><li>run " << Html(r.today.run_id) << ", spec " << Html(r.today.spec_hash.substr(0, 12)) << "</li>";
  if (r.baseline) {
    o << "<li>baseline " << Html(r.baseline->date) << " (" << Html(r.baseline->run_id) << ")"
      << (r.baseline->spec_hash != r.today.spec_hash ? ", <b>spec changed since</b>" : ", same spec") << "</li>";
  } else {
    o << "<li>baseline: none (the campaign's first run)</li>";
  }
  o << "<li>acs " << Html(r.header.acs_version) << "</li>";
  if (!r.header.runtime.empty()) o << "<li>server runtime " << Html(r.header.runtime) << "</li>";
  for (const std::string& p : r.header.predictors) o << "<li>predictor " << Html(p) << "</li>";
  for (const std::string& w : r.header.workers) o << "<li>worker " << Html(w) << "</li>";
  o << "</ul><table><tr>";
  for (const auto& [k, v] : OrderedCounts(r)) o << "<th class=\"" << k << "\">" << k << "</th>";
  o << "</tr><tr>";
  for (const auto& [k, v] : OrderedCounts(r)) o << "<td>" << v << "</td>";
  o << "</tr></table>\n";
  std::vector<std::string> labels;
  std::vector<std::optional<double>> speed, base_speed, loss, base_loss;
  for (const GroupSummary& g : r.groups) {
    labels.push_back((g.device_class.empty() ? std::string("default") : g.device_class) + " / " + g.agent);
    speed.push_back(g.geomean_speedup);
    base_speed.push_back(g.baseline_geomean_speedup);
    loss.push_back(g.mean_accuracy_loss);
    base_loss.push_back(g.baseline_mean_accuracy_loss);
  }
  o << "<h2>By device class and agent</h2>" << BarChart("geomean measured speedup", labels, speed, base_speed)
    << BarChart("mean accuracy loss", labels, loss, base_loss);
  if (const std::string note = RemeasuredNote(r); !note.empty()) o << "<p>" << Html(note) << "</p>";
  o << "<h2>Cells, most severe first</h2><table><tr><th>cell</th><th>verdict</th><th>job</th><th>baseline job</th>";
  for (const std::string& m : CampaignMetrics())
    o << "<th>" << Html(m) << "<br>baseline &rarr; today (delta, band)</th>";
  o << "<th>re-measure</th><th>error</th></tr>\n";
  for (const CellComparison& c : r.cells) {
    o << "<tr class=\"" << VerdictName(c.verdict) << "\"><td>" << Html(c.key) << "</td><td>" << VerdictName(c.verdict)
      << "</td><td>" << JobRef(c.job_id, link, true) << "</td><td>" << JobRef(c.baseline_job_id, link, true) << "</td>";
    for (const MetricChange& m : c.changes) {
      o << "<td>" << Html(BaselineText(m)) << " &rarr; " << Num(m.today);
      if (m.baseline && m.today) o << " (" << Signed(m.delta) << ", " << Num(m.band, "%.3g") << ")";
      if (m.flagged != 0) o << (m.flagged < 0 ? " <b>regressed</b>" : " improved");
      o << "</td>";
    }
    o << "<td>" << Html(RemeasureText(c)) << "</td><td>" << Html(c.error) << "</td></tr>\n";
  }
  o << "</table></body></html>\n";
  return o.str();
}

}  // namespace

StatusOr<std::string> RenderCampaignReport(const CampaignReport& report, const std::string& format,
                                           const std::string& job_link) {
  if (format == "json") return ToJson(report).dump(2) + "\n";
  if (format == "md") return Markdown(report, job_link);
  if (format == "html") return HtmlPage(report, job_link);
  return Status::InvalidArgument("--format expects json, md or html, got '" + format + "'");
}

}  // namespace acs
