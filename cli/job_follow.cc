// Following several jobs by reading them in turn (one GetJob each per poll).
#include "cli/job_follow.h"

#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>

#include "cli/job_display.h"
#include "cli/job_transfers.h"

namespace acs::cli {

std::string FormatNow(const char* format, bool utc) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (utc) {
    gmtime_r(&now, &tm);
  } else {
    localtime_r(&now, &tm);
  }
  char b[64];
  return std::strftime(b, sizeof b, format, &tm) > 0 ? b : "";
}

std::string Clock() { return FormatNow("%H:%M:%S"); }

StatusOr<std::vector<acs::v1::Job>> FollowJobs(const Remote& r, const std::vector<FollowedJob>& jobs,
                                               const FollowOptions& options) {
  std::map<std::string, std::string> shown;  // id -> last line shown
  std::vector<acs::v1::Job> read(jobs.size());
  while (true) {
    int ended = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      ACS_ASSIGN_OR_RETURN(read[i], FetchJob(r, jobs[i].id));
      ended += IsTerminal(read[i].state());
    }
    for (size_t i = 0; i < jobs.size(); ++i) {
      acs::v1::Job& job = read[i];
      if (!IsTerminal(job.state()) && options.on_poll) ACS_RETURN_IF_ERROR(options.on_poll(jobs[i].label, &job));
      std::string line = acs::v1::JobState_Name(job.state());
      for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (IsTerminal(job.state()) && !job.error().empty()) line += ": " + job.error();
      if (shown[jobs[i].id] == line) continue;
      shown[jobs[i].id] = line;
      std::cerr << Clock() << " [" << ended << "/" << jobs.size() << "] " << jobs[i].label << ": " << line << " ("
                << job.id() << ")" << std::endl;
    }
    if (ended == static_cast<int>(jobs.size())) return read;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(options.poll_seconds * 1000)));
  }
}

}  // namespace acs::cli
