// How the acs job commands show a job: event lines, the summary, the outcome as a status.
#include "cli/job_display.h"

#include <strings.h>

#include <cstdio>
#include <ctime>

#include "cli/table.h"
#include "core/data_split.h"
#include "proto/request_json.h"

namespace acs::cli {
namespace {

using acs::v1::Job;
using acs::v1::JobEvent;
using acs::v1::JobState;

std::string Format(const char* fmt, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, value);
  return buf;
}

// 75 -> "1m15s".
std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return std::to_string(s / 3600) + "h" + Format("%02.0fm", (s % 3600) / 60);
  if (s >= 60) return std::to_string(s / 60) + "m" + Format("%02.0fs", s % 60);
  return std::to_string(s) + "s";
}

// The local time of unix ms `time_ms` as "HH:MM:SS ", with the date before it when not
// today's; "" when unknown (0).
std::string EventTime(int64_t time_ms) {
  if (time_ms <= 0) return "";
  const std::time_t when = static_cast<std::time_t>(time_ms / 1000), now = std::time(nullptr);
  std::tm event_tm{}, now_tm{};
  localtime_r(&when, &event_tm);
  localtime_r(&now, &now_tm);
  const bool today = event_tm.tm_year == now_tm.tm_year && event_tm.tm_yday == now_tm.tm_yday;
  char buf[32];
  std::strftime(buf, sizeof buf, today ? "%H:%M:%S " : "%Y-%m-%d %H:%M:%S ", &event_tm);
  return buf;
}

// "predicted 100.0 us vs dense 200.0 us (2.00x)"; false (nothing printed) while unknown.
bool PrintLatency(std::ostream& out, const char* label, const char* what, double dense_us, double best_us) {
  if (best_us <= 0) return false;
  out << "  " << label << what << " " << Format("%.1f us", best_us);
  if (dense_us > 0) out << " vs dense " << Format("%.1f us", dense_us) << " (" << Speedup(dense_us, best_us) << ")";
  out << "\n";
  return true;
}

}  // namespace

bool IsTerminal(JobState s) {
  return s == acs::v1::SUCCEEDED || s == acs::v1::BUDGET_NOT_MET || s == acs::v1::FAILED || s == acs::v1::CANCELLED;
}

std::string Bytes(int64_t n) {
  if (n >= (1 << 20)) return Format("%.2f MiB", n / 1048576.0);
  if (n >= 1024) return Format("%.1f KiB", n / 1024.0);
  return std::to_string(n) + " B";
}

std::string Budget(const acs::v1::Budget& b) { return b.kind() + "=" + Format("%.3gx", b.ratio()); }

std::string Speedup(double dense_us, double best_us) {
  return dense_us > 0 && best_us > 0 ? Format("%.2fx", dense_us / best_us) : "";
}

// "12/60", or past the request's episodes (closed-loop rounds) "75 (60 + rounds)".
std::string EpisodeCount(int done, int requested) {
  if (requested <= 0) return std::to_string(done);
  if (done <= requested) return std::to_string(done) + "/" + std::to_string(requested);
  return std::to_string(done) + " (" + std::to_string(requested) + " + rounds)";
}

std::string Episodes(const Job& job) { return EpisodeCount(job.episodes_done(), job.request().episodes()); }

std::string EventLine(const JobEvent& e) {
  const Job& job = e.job();
  std::string line = EventTime(e.time_ms());
  switch (e.kind()) {
    case JobEvent::EPISODE: {
      line += "episode " + EpisodeCount(e.episode(), job.request().episodes()) + "  reward " +
              Format("%.4f", e.reward()) + "  accuracy " + Percent(e.accuracy(), 2) + "  cost " +
              Format("%.3fx", e.cost_ratio()) + "  best " + Percent(job.best_accuracy(), 2) + " (reward " +
              Format("%.4f", job.best_reward()) + ")";
      if (job.eta_seconds() > 0) line += "  ETA " + Duration(job.eta_seconds());
      break;
    }
    case JobEvent::VERIFIED: {
      line += "verified";
      const std::string speedup = Speedup(job.dense_measured_latency_us(), job.best_measured_latency_us());
      if (e.message().empty() && !speedup.empty()) {
        line += ": best " + Format("%.1f us", job.best_measured_latency_us()) + " vs dense " +
                Format("%.1f us", job.dense_measured_latency_us()) + " measured (" + speedup + ")";
      }
      break;
    }
    default: {  // STATE: the state entered, which the job may have left already
      const std::string state =
          acs::v1::JobState_Name(e.state() != acs::v1::JOB_STATE_UNSPECIFIED ? e.state() : job.state());
      line += "state " + state;
      if (strcasecmp(e.message().c_str(), state.c_str()) == 0) return line;  // no news in the message
    }
  }
  if (!e.message().empty()) line += "  " + e.message();
  return line;
}

void PrintJob(const Job& job, std::ostream& out) {
  const acs::v1::SubmitJobRequest& r = job.request();
  out << "job " << job.id() << ": " << acs::v1::JobState_Name(job.state()) << "\n";
  std::string shape;
  for (int64_t d : r.input_shape()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  out << "  request    model " << r.model_sha256().substr(0, 12) << ", input " << shape << ", data "
      << (r.dataset_name().empty() ? r.dataset_sha256().substr(0, 12) : r.dataset_name()) << ", budget "
      << Budget(r.budget()) << ", agent " << r.agent()
      << (r.device_class().empty() ? "" : ", device class " + r.device_class()) << "\n";
  const StatusOr<DataSplit> split = DataSplit::FromJson(DataSplitJson(r.split()));
  const std::string test =
      r.test_dataset_name().empty() ? r.test_dataset_sha256().substr(0, 12) : r.test_dataset_name();
  if ((split.ok() && !split->empty()) || !test.empty()) {
    out << "  data       split " << (split.ok() && !split->empty() ? split->ToString() : "default")
        << (test.empty() ? "" : ", test set " + test) << "\n";
  }
  out << "  episodes   " << Episodes(job);
  if (job.episodes_done() > 0) out << ", best reward " << Format("%.4f", job.best_reward());
  if (job.eta_seconds() > 0 && !IsTerminal(job.state())) out << ", ETA " << Duration(job.eta_seconds());
  out << "\n";
  if (job.exported_accuracy() > 0) {
    out << "  accuracy   compressed.pt " << Percent(job.exported_accuracy(), 2) << " vs dense "
        << Percent(job.dense_accuracy(), 2) << " ("
        << Format("%+.2f points", 100 * (job.exported_accuracy() - job.dense_accuracy())) << "; the search estimated "
        << Percent(job.best_accuracy(), 2) << ")\n";
    if (job.test_samples() > 0) {
      out << "  test set   compressed.pt " << Percent(job.test_accuracy(), 2) << " vs dense "
          << Percent(job.dense_test_accuracy(), 2) << " ("
          << Format("%+.2f points", 100 * (job.test_accuracy() - job.dense_test_accuracy())) << ") on "
          << job.test_samples() << " samples\n";
    }
  } else if (job.best_accuracy() > 0 || job.dense_accuracy() > 0) {
    out << "  accuracy   best " << Percent(job.best_accuracy(), 2) << " vs dense " << Percent(job.dense_accuracy(), 2)
        << " (" << Format("%+.2f points", 100 * (job.best_accuracy() - job.dense_accuracy())) << ")\n";
  }
  const bool predicted =
      PrintLatency(out, "latency    ", "predicted", job.dense_predicted_latency_us(), job.best_predicted_latency_us());
  PrintLatency(out, predicted ? "           " : "latency    ", "measured ", job.dense_measured_latency_us(),
               job.best_measured_latency_us());
  PrintLatency(out, "           ", "compressed.pt in stock PyTorch", job.dense_measured_latency_us(),
               job.stock_measured_latency_us());
  PrintLatency(out, "           ", "compressed.acs.pt with libacs_ops", job.dense_measured_latency_us(),
               job.acs_file_measured_latency_us());
  if (r.budget().kind() == "latency" && job.best_measured_latency_us() > 0 && job.dense_measured_latency_us() > 0) {
    const double ratio = job.best_measured_latency_us() / job.dense_measured_latency_us();
    const bool met = job.state() != acs::v1::BUDGET_NOT_MET && IsTerminal(job.state());
    out << "  budget     " << Format("%.2fx", r.budget().ratio()) << " of dense latency: measured "
        << Format("%.2fx", ratio)
        << (job.state() == acs::v1::BUDGET_NOT_MET ? ", NOT met"
            : met                                  ? ", met"
                                                   : "")
        << "\n";
  }
  for (int i = 0; i < job.artifacts_size(); ++i) {
    const acs::v1::Artifact& a = job.artifacts(i);
    out << (i == 0 ? "  artifacts  " : "             ") << a.name() << " (" << Bytes(a.bytes()) << ")\n";
  }
  if (!job.error().empty()) out << "  error      " << job.error() << "\n";
  out << "  created    " << job.created() << (job.updated().empty() ? "" : ", updated " + job.updated()) << "\n";
}

Status Outcome(const Job& job) {
  switch (job.state()) {
    case acs::v1::SUCCEEDED:
      return Status::Ok();
    case acs::v1::FAILED:
      return Status::Aborted("job " + job.id() + " FAILED: " + (job.error().empty() ? "no reason given" : job.error()));
    case acs::v1::BUDGET_NOT_MET:
      return Status::FailedPrecondition("job " + job.id() + " ended with its latency budget not met: " + job.error());
    case acs::v1::CANCELLED:
      return Status::Cancelled("job " + job.id() + " was cancelled");
    default:
      return Status::Unavailable("job " + job.id() + " is still " + acs::v1::JobState_Name(job.state()) +
                                 " but its event stream ended; run 'acs watch " + job.id() + "' again");
  }
}

}  // namespace acs::cli
