// The server store's device farm: workers and their task leases (server/server_store.h).
#include <algorithm>

#include "server/server_store.h"
#include "server/server_store_internal.h"

namespace acs::server {
namespace {

using store_internal::InTransaction;
using store_internal::NextSeq;
using store_internal::ReadAll;

constexpr const char* kTaskColumns =
    "id, job_id, kind, machine_id, spec_json, state, worker_id, lease_expires_ms, attempts, result_json, error";

TaskRecord ReadTask(const Statement& q) {
  TaskRecord t;
  t.id = q.Text(0);
  t.job_id = q.Text(1);
  t.kind = q.Text(2);
  t.machine_id = q.Text(3);
  t.spec_json = q.Text(4);
  t.state = q.Text(5);
  t.worker_id = q.Text(6);
  t.lease_expires_ms = q.Int(7);
  t.attempts = static_cast<int>(q.Int(8));
  t.result_json = q.Text(9);
  t.error = q.Text(10);
  return t;
}

// Fails the queued and leased tasks of job_id with `error` in one transaction, only those
// named in *only_ids when it is given; returns how many. The caller holds the store's mutex.
StatusOr<int> FailOpen(Db& db, const std::string& job_id, const std::vector<std::string>* only_ids,
                       const std::string& error) {
  return InTransaction(db, [&]() -> StatusOr<int> {
    ACS_ASSIGN_OR_RETURN(Statement q, db.Prepare("UPDATE tasks SET state = ?1, error = ?2, worker_id = '', "
                                                 "lease_expires_ms = 0 WHERE job_id = ?3 AND state IN (?4, ?5) "
                                                 "AND (?6 IS NULL OR id = ?6)"));
    int failed = 0;
    auto fail = [&](const std::string* id) -> Status {  // id null: every open task of the job
      q.Bind(1, std::string(kTaskFailed)).Bind(2, error).Bind(3, job_id).Bind(4, std::string(kTaskQueued));
      q.Bind(5, std::string(kTaskLeased));
      if (id == nullptr) {
        q.BindNull(6);
      } else {
        q.Bind(6, *id);
      }
      ACS_RETURN_IF_ERROR(q.Run());
      failed += db.Changes();
      return q.Reset();
    };
    if (only_ids == nullptr) {
      ACS_RETURN_IF_ERROR(fail(nullptr));
    } else {
      for (const std::string& id : *only_ids) ACS_RETURN_IF_ERROR(fail(&id));
    }
    return failed;
  });
}

}  // namespace

StatusOr<WorkerRecord> ServerStore::RegisterWorker(WorkerRecord w, int64_t now_ms) {
  if (w.id.empty()) {
    ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(6));
    w.id = "worker-" + suffix;
  }
  w.last_seen_ms = now_ms;
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO workers (id, name, machine_id, device_json, version, "
                                                 "last_seen_ms, token_id) VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO "
                                                 "UPDATE SET name = excluded.name, machine_id = excluded.machine_id, "
                                                 "device_json = excluded.device_json, version = excluded.version, "
                                                 "last_seen_ms = excluded.last_seen_ms, token_id = excluded.token_id"));
  q.Bind(1, w.id).Bind(2, w.name).Bind(3, w.machine_id).Bind(4, w.device_json).Bind(5, w.version).Bind(6, now_ms);
  q.Bind(7, w.token_id);
  ACS_RETURN_IF_ERROR(q.Run());
  return w;
}

Status ServerStore::TouchWorker(const std::string& worker_id, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("UPDATE workers SET last_seen_ms = ? WHERE id = ?"));
  q.Bind(1, now_ms).Bind(2, worker_id);
  ACS_RETURN_IF_ERROR(q.Run());
  if (db_->Changes() == 0) return Status::NotFound("no worker '" + worker_id + "'; register first");
  return Status::Ok();
}

StatusOr<std::vector<WorkerRecord>> ServerStore::ListWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT id, name, machine_id, device_json, version, last_seen_ms, "
                                                 "token_id FROM workers ORDER BY id"));
  return ReadAll<WorkerRecord>(q, [](const Statement& r) {
    return WorkerRecord{r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Text(4), r.Int(5), r.Int(6)};
  });
}

StatusOr<TaskRecord> ServerStore::EnqueueTask(TaskRecord task) {
  ACS_ASSIGN_OR_RETURN(std::string suffix, RandomHex(8));
  task.id = "task-" + suffix;
  task.state = kTaskQueued;
  std::lock_guard<std::mutex> lock(mu_);
  ACS_RETURN_IF_ERROR(InTransaction(*db_, [&]() -> Status {
    ACS_ASSIGN_OR_RETURN(int64_t seq, NextSeq(*db_, "tasks"));
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare("INSERT INTO tasks (id, seq, job_id, kind, machine_id, spec_json, "
                                                   "state) VALUES (?,?,?,?,?,?,?)"));
    q.Bind(1, task.id).Bind(2, seq).Bind(3, task.job_id).Bind(4, task.kind).Bind(5, task.machine_id);
    q.Bind(6, task.spec_json).Bind(7, std::string(kTaskQueued));
    return q.Run();
  }));
  return task;
}

StatusOr<std::vector<TaskRecord>> ServerStore::LeaseTasks(const std::string& worker_id, const std::string& machine_id,
                                                          int max, int64_t now_ms, int64_t lease_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> StatusOr<std::vector<TaskRecord>> {
    ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kTaskColumns +
                                                   " FROM tasks WHERE state = ? AND machine_id = ? ORDER BY seq "
                                                   "LIMIT ?"));
    q.Bind(1, std::string(kTaskQueued)).Bind(2, machine_id).Bind(3, static_cast<int64_t>(std::max(0, max)));
    ACS_ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, ReadAll<TaskRecord>(q, ReadTask));
    ACS_ASSIGN_OR_RETURN(Statement u, db_->Prepare("UPDATE tasks SET state = ?, worker_id = ?, lease_expires_ms = ?, "
                                                   "attempts = attempts + 1 WHERE id = ?"));
    for (TaskRecord& t : tasks) {
      u.Bind(1, std::string(kTaskLeased)).Bind(2, worker_id).Bind(3, now_ms + lease_ms).Bind(4, t.id);
      ACS_RETURN_IF_ERROR(u.Run());
      u.Reset();
      t.state = kTaskLeased;
      t.worker_id = worker_id;
      t.lease_expires_ms = now_ms + lease_ms;
      t.attempts += 1;
    }
    return tasks;
  });
}

StatusOr<std::vector<std::string>> ServerStore::ExtendLeases(const std::string& worker_id,
                                                             const std::vector<std::string>& ids, int64_t now_ms,
                                                             int64_t lease_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> StatusOr<std::vector<std::string>> {
    std::vector<std::string> lost;
    ACS_ASSIGN_OR_RETURN(Statement u, db_->Prepare("UPDATE tasks SET lease_expires_ms = ? WHERE id = ? AND "
                                                   "worker_id = ? AND state = ?"));
    for (const std::string& id : ids) {
      u.Bind(1, now_ms + lease_ms).Bind(2, id).Bind(3, worker_id).Bind(4, std::string(kTaskLeased));
      ACS_RETURN_IF_ERROR(u.Run());
      if (db_->Changes() == 0) lost.push_back(id);
      u.Reset();
    }
    return lost;
  });
}

StatusOr<bool> ServerStore::ReportTask(const std::string& worker_id, const std::string& task_id, bool ok,
                                       const std::string& result_json, const std::string& error, int max_attempts,
                                       std::vector<predictors::KernelRecord>* kernels) {
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(*db_, [&]() -> StatusOr<bool> {
    ACS_ASSIGN_OR_RETURN(
        Statement u,
        db_->Prepare("UPDATE tasks SET "
                     "state = CASE WHEN ?1 THEN 'done' WHEN attempts >= ?2 THEN 'failed' ELSE 'queued' END, "
                     "error = CASE WHEN ?1 THEN '' WHEN attempts >= ?2 THEN 'failed after ' || attempts || "
                     "' attempts: ' || ?3 ELSE ?3 END, "
                     "worker_id = CASE WHEN ?1 THEN worker_id ELSE '' END, "
                     "result_json = ?4, lease_expires_ms = 0 "
                     "WHERE id = ?5 AND worker_id = ?6 AND state = 'leased'"));
    u.Bind(1, static_cast<int64_t>(ok ? 1 : 0)).Bind(2, static_cast<int64_t>(max_attempts)).Bind(3, error);
    u.Bind(4, result_json).Bind(5, task_id).Bind(6, worker_id);
    ACS_RETURN_IF_ERROR(u.Run());
    const bool accepted = db_->Changes() > 0;
    if (accepted && ok && kernels != nullptr) ACS_RETURN_IF_ERROR(predictors::InsertKernels(*db_, *kernels));
    return accepted;
  });
}

StatusOr<int> ServerStore::RequeueExpired(int64_t now_ms, int max_attempts) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(
      Statement u,
      db_->Prepare("UPDATE tasks SET "
                   "state = CASE WHEN attempts >= ?1 THEN 'failed' ELSE 'queued' END, "
                   "error = CASE WHEN attempts >= ?1 THEN 'failed after ' || attempts || ' attempts: worker ' || "
                   "COALESCE((SELECT name FROM workers WHERE workers.id = tasks.worker_id), tasks.worker_id) || "
                   "' stopped answering while running it (its lease expired)' ELSE error END, "
                   "worker_id = '', lease_expires_ms = 0 "
                   "WHERE state = 'leased' AND lease_expires_ms <= ?2"));
  u.Bind(1, static_cast<int64_t>(max_attempts)).Bind(2, now_ms);
  ACS_RETURN_IF_ERROR(u.Run());
  return db_->Changes();
}

StatusOr<TaskRecord> ServerStore::GetTask(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id = ?"));
  q.Bind(1, id);
  ACS_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Status::NotFound("no task '" + id + "'");
  return ReadTask(q);
}

StatusOr<std::vector<TaskRecord>> ServerStore::TasksOfJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ACS_ASSIGN_OR_RETURN(Statement q, db_->Prepare(std::string("SELECT ") + kTaskColumns +
                                                 " FROM tasks WHERE job_id = ? ORDER BY seq"));
  q.Bind(1, job_id);
  return ReadAll<TaskRecord>(q, ReadTask);
}

StatusOr<int> ServerStore::FailOpenTasksOfJob(const std::string& job_id, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  return FailOpen(*db_, job_id, nullptr, error);
}

StatusOr<int> ServerStore::FailOpenTasks(const std::string& job_id, const std::vector<std::string>& task_ids,
                                         const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  return FailOpen(*db_, job_id, &task_ids, error);
}

}  // namespace acs::server
