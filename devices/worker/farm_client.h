// acs-worker serve: dials the server's farm service, registers this machine's device
// class, leases measurement tasks, heartbeats while measuring and reports the results;
// reconnects with exponential back-off when the server goes away, and registers again
// when the server no longer knows it.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "core/child_process.h"
#include "core/status.h"
#include "devices/worker/kernel_measure.h"

namespace acs::worker {

// Timed runs of each form a whole-model measurement takes at least unless told otherwise
// (`measure`, model tasks): on a shared host 40-50 runs narrowed the spread of a ResNet-18
// ratio between processes from ±8% to ±4.5% (docs/latency.md).
constexpr int kModelMinRepeats = 40;

struct ServeOptions {
  std::string server = "127.0.0.1:50051";  // host:port of acs-server
  std::string token;                        // bearer token with the worker role; empty: none
  std::string root_certs;                   // PEM of the server's CA: TLS when set
  std::string name;                         // shown in device listings; empty: host name
  double poll_seconds = 0.5;                // wait between empty leases
  double max_backoff_seconds = 10;          // reconnect back-off ceiling
  int max_tasks = 0;                        // exit after this many tasks; 0 = never
  KernelMeasureOptions measure;             // timing and kernel choice of kernel and
                                            // model tasks (threads come from the task)
  int model_min_repeats = kModelMinRepeats;  // timed runs at least of a model task's forms
  // Model tasks run a user's model: in a child `task_command...` (RunModelTaskIsolated)
  // under these limits; in this process when the command is empty.
  std::vector<std::string> task_command;
  // 8 GiB, 30 minutes, no file written (the model is read from memory), no IPv4 or IPv6
  // socket (it talks over its stdin and stdout).
  ProcessLimits task_limits{int64_t{8} << 30, 0, 1800, WriteConfinement{true, {}, "", false, {}, true}};
};

// Runs until *stop becomes true (checked between tasks and while waiting) or max_tasks
// tasks were done. Errors only for bad options; a missing server is waited for.
Status Serve(const ServeOptions& options, const std::atomic<bool>* stop);

}  // namespace acs::worker
