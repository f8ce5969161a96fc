#include "experiments/bench/quality_summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace acs::bench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Distinct values of `key` over the runs, in their first order.
template <class T, class Key>
std::vector<T> Distinct(const std::vector<QualityRun>& runs, Key key) {
  std::vector<T> out;
  for (const QualityRun& r : runs) {
    if (std::find(out.begin(), out.end(), key(r)) == out.end()) out.push_back(key(r));
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// NaN as JSON null.
nlohmann::json Number(double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); }

}  // namespace

nlohmann::json QualityRun::ToJson() const {
  nlohmann::json j = {{"model", model}, {"agent", agent}, {"budget", budget}, {"seed", seed}};
  if (!ran()) {
    j["skipped"] = skipped;
    return j;
  }
  j.update({{"episodes", episodes},
            {"search_seconds", search_seconds},
            {"export_seconds", export_seconds},
            {"validation_top1", validation_top1},
            {"predicted_ratio", predicted_ratio},
            {"test_top1", test_top1},
            {"dense_test_top1", dense_test_top1},
            {"test_samples", test_samples},
            {"loss_points", loss_points()},
            {"fine_tune_kept_epoch", fine_tune_kept_epoch},
            {"measured_ratio", measured_ratio},
            {"measured_speedup", speedup()},
            {"policy_hash", policy.Hash()},
            {"policy", nlohmann::json::parse(policy.ToJson(-1))}});
  return j;
}

std::vector<SpeedupAtLoss> SpeedupsAtLoss(const std::vector<QualityRun>& runs, double max_loss_points, double target) {
  std::vector<SpeedupAtLoss> out;
  for (const std::string& model : Distinct<std::string>(runs, [](const QualityRun& r) { return r.model; })) {
    SpeedupAtLoss s{model, max_loss_points, target, 0, nullptr};
    for (const QualityRun& r : runs) {
      if (r.model != model || !r.ran() || r.loss_points() > max_loss_points) continue;
      if (r.speedup() > s.speedup) {
        s.speedup = r.speedup();
        s.run = &r;
      }
    }
    out.push_back(s);
  }
  return out;
}

std::vector<AgentComparison> CompareAgents(const std::vector<QualityRun>& runs) {
  std::vector<AgentComparison> out;
  const auto agents = Distinct<std::string>(runs, [](const QualityRun& r) { return r.agent; });
  for (const std::string& model : Distinct<std::string>(runs, [](const QualityRun& r) { return r.model; })) {
    for (double budget : Distinct<double>(runs, [](const QualityRun& r) { return r.budget; })) {
      AgentComparison c{model, budget, agents, {}, {}, kNaN};
      double weakest_learned = kNaN, strongest_baseline = kNaN;
      for (const std::string& agent : agents) {
        double sum = 0;
        int n = 0;
        for (const QualityRun& r : runs) {
          if (r.model == model && r.budget == budget && r.agent == agent && r.ran()) {
            sum += r.test_top1;
            ++n;
          }
        }
        const double mean = n > 0 ? sum / n : kNaN;
        c.mean_test_top1.push_back(mean);
        c.seeds.push_back(n);
        if (n == 0) continue;
        if (Contains(kLearnedAgents, agent)) weakest_learned = std::fmin(weakest_learned, mean);
        if (Contains(kBaselineAgents, agent)) strongest_baseline = std::fmax(strongest_baseline, mean);
      }
      c.gap_points = 100 * (weakest_learned - strongest_baseline);  // NaN unless both
      out.push_back(c);
    }
  }
  return out;
}

void PrintRunHeader() {
  std::printf("%-16s %6s %-6s %4s %4s %8s %8s %8s %7s %7s %8s %7s %7s\n", "model", "budget", "agent", "seed", "eps",
              "val top1", "testtop1", "dense", "loss", "pred x", "speedup", "srch s", "rcvr s");
}

void PrintRun(const QualityRun& r) {
  if (!r.ran()) {
    std::printf("%-16s %5.2fx %-6s %4llu skipped: %s\n", r.model.c_str(), r.budget, r.agent.c_str(),
                static_cast<unsigned long long>(r.seed), r.skipped.c_str());
    return;
  }
  std::printf("%-16s %5.2fx %-6s %4llu %4d %7.2f%% %7.2f%% %7.2f%% %+7.2f %7.3f %7.2fx %7.0f %7.0f\n", r.model.c_str(),
              r.budget, r.agent.c_str(), static_cast<unsigned long long>(r.seed), r.episodes, 100 * r.validation_top1,
              100 * r.test_top1, 100 * r.dense_test_top1, r.loss_points(), r.predicted_ratio, r.speedup(),
              r.search_seconds, r.export_seconds);
}

nlohmann::json PrintSummary(const std::vector<QualityRun>& runs) {
  nlohmann::json out = {{"speedup_at_loss", nlohmann::json::array()}, {"agents", nlohmann::json::array()}};
  std::printf("\nlargest measured speedup (dense baseline / runtime) within a test top-1 loss:\n");
  for (const auto& [loss, target] : {std::pair{0.5, 2.5}, std::pair{0.1, 1.8}}) {
    for (const SpeedupAtLoss& s : SpeedupsAtLoss(runs, loss, target)) {
      if (s.run == nullptr) {
        std::printf("  %-16s <= %.1f point: no run within the loss (target >= %.1fx)\n", s.model.c_str(), loss, target);
      } else {
        std::printf("  %-16s <= %.1f point: %.2fx (%s, %.2fx budget, seed %llu, %+.2f points; target >= %.1fx) %s\n",
                    s.model.c_str(), loss, s.speedup, s.run->agent.c_str(), s.run->budget,
                    static_cast<unsigned long long>(s.run->seed), -s.run->loss_points(), target,
                    s.speedup >= target ? "met" : "not met");
      }
      out["speedup_at_loss"].push_back({{"model", s.model},
                                        {"max_loss_points", loss},
                                        {"target_speedup", target},
                                        {"speedup", s.speedup},
                                        {"met", s.speedup >= target},
                                        {"run", s.run ? s.run->ToJson() : nlohmann::json()}});
    }
  }
  std::printf(
      "\nmean test top-1 over seeds per agent; gap = weakest of amc/agmc - strongest of random/evo "
      "(target >= +1 point):\n");
  for (const AgentComparison& c : CompareAgents(runs)) {
    std::printf("  %-16s %.2fx:", c.model.c_str(), c.budget);
    nlohmann::json means = nlohmann::json::object();
    for (size_t i = 0; i < c.agents.size(); ++i) {
      if (c.seeds[i] == 0) continue;
      std::printf(" %s %.2f%% (%d)", c.agents[i].c_str(), 100 * c.mean_test_top1[i], c.seeds[i]);
      means[c.agents[i]] = {{"mean_test_top1", c.mean_test_top1[i]}, {"seeds", c.seeds[i]}};
    }
    if (std::isnan(c.gap_points)) {
      std::printf("; gap: needs a learned agent and a baseline\n");
    } else {
      std::printf("; gap %+.2f points %s\n", c.gap_points, c.gap_points >= 1 ? "met" : "not met");
    }
    out["agents"].push_back({{"model", c.model},
                             {"budget", c.budget},
                             {"agents", means},
                             {"gap_points", Number(c.gap_points)},
                             {"met", !std::isnan(c.gap_points) && c.gap_points >= 1}});
  }
  return out;
}

}  // namespace acs::bench
