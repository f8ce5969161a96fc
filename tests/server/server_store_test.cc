// The server store: tokens, jobs and their events, workers, and the task leases that
// survive a dead worker.
#include "core/sha256.h"
#include "core/sqlite_db.h"
#include "server/blob_store.h"
#include "server/job_records.h"
#include "server/server_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>

namespace acs::server {
namespace {

class ServerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("acs_server_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "server.db").string();
    auto s = ServerStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A worker of kMachine registered at t = 1000 ms.
  StatusOr<WorkerRecord> Register(const std::string& name) {
    WorkerRecord w;
    w.name = name;
    w.machine_id = kMachine;
    return store_->RegisterWorker(w, 1000);
  }
  // A measure-kernel task of the job on kMachine, not yet enqueued.
  static TaskRecord KernelTask(const std::string& job_id) {
    TaskRecord t;
    t.job_id = job_id;
    t.kind = "measure-kernel";
    t.machine_id = kMachine;
    t.spec_json = "{}";
    return t;
  }
  // A new task of the job, leased at once by a new worker (no other task may be queued).
  TaskRecord LeaseNewTask(const std::string& job_id) {
    const std::string id = store_->EnqueueTask(KernelTask(job_id)).value().id;
    const WorkerRecord w = Register("w-" + id).value();
    const std::vector<TaskRecord> leased = store_->LeaseTasks(w.id, kMachine, 1, 1000, 1000).value();
    EXPECT_TRUE(leased.size() == 1 && leased[0].id == id);
    return leased.empty() ? TaskRecord{} : leased[0];
  }
  // Each task of `ids` failed with `error`, no worker holding it.
  void ExpectFailed(const std::vector<std::string>& ids, const std::string& error) {
    for (const std::string& id : ids) {
      const TaskRecord r = *store_->GetTask(id);
      EXPECT_EQ(r.state, kTaskFailed) << id;
      EXPECT_EQ(r.error, error) << id;
      EXPECT_EQ(r.worker_id, "") << id;
      EXPECT_EQ(r.lease_expires_ms, 0) << id;
    }
  }
  static constexpr const char* kMachine = "x86_64-avx512-test";
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<ServerStore> store_;
};

TEST_F(ServerStoreTest, TokensAreStoredHashedAndCanBeRevoked) {
  StatusOr<std::string> admin = store_->CreateToken("root", Role::kAdmin);
  StatusOr<std::string> user = store_->CreateToken("ann", Role::kUser);
  ASSERT_TRUE(admin.ok() && user.ok());
  EXPECT_NE(*admin, *user);
  StatusOr<Principal> p = store_->Authenticate(*user);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "ann");
  EXPECT_EQ(p->role, Role::kUser);
  EXPECT_EQ(store_->Authenticate("acs_u_wrong").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(store_->Authenticate("").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(*store_->CountTokens(), 2);
  ASSERT_TRUE(store_->RevokeToken(p->token_id).ok());
  EXPECT_EQ(store_->Authenticate(*user).status().code(), StatusCode::kUnauthenticated);
  // The token text itself is nowhere in the file.
  std::ifstream in(path_, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find(*admin), std::string::npos);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(ServerStoreTest, TokenNamesAreUniqueWhileLiveAndTokensListAndRevokeByName) {
  StatusOr<std::string> lab = store_->CreateToken("lab", Role::kWorker, 30);
  ASSERT_TRUE(lab.ok()) << lab.status().message();
  EXPECT_EQ(store_->CreateToken("lab", Role::kUser).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateToken("bad", Role::kUser, -1).status().code(), StatusCode::kInvalidArgument);
  StatusOr<std::vector<TokenRecord>> tokens = store_->ListTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].name, "lab");
  EXPECT_EQ((*tokens)[0].role, Role::kWorker);
  EXPECT_TRUE((*tokens)[0].live);
  EXPECT_GT((*tokens)[0].expires, (*tokens)[0].created);  // 30 days on
  EXPECT_TRUE(store_->Authenticate(*lab).ok());
  ASSERT_TRUE(store_->RevokeTokenNamed("lab").ok());
  EXPECT_EQ(store_->Authenticate(*lab).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(store_->RevokeTokenNamed("lab").code(), StatusCode::kNotFound);
  EXPECT_FALSE((*store_->ListTokens())[0].live);
  EXPECT_TRUE((*store_->ListTokens())[0].revoked);
  // The name is free again once its token is revoked.
  EXPECT_TRUE(store_->CreateToken("lab", Role::kWorker).ok());
}

TEST_F(ServerStoreTest, JobsEventsAndPagingSurviveReopening) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    JobRecord j;
    j.owner = i % 2 ? "bob" : "ann";
    j.request_json = "{\"n\": " + std::to_string(i) + "}";
    StatusOr<JobRecord> created = store_->CreateJob(j);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_EQ(created->state, kJobQueued);
    EXPECT_FALSE(created->created.empty());
    ids.push_back(created->id);
  }
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 5u);
  JobRecord j = *store_->GetJob(ids[2]);
  j.state = kJobSearching;
  j.checkpoint = std::string("agent\0state", 11);
  j.progress_json = R"({"episodes_done": 3})";
  ASSERT_TRUE(store_->UpdateJob(j).ok());
  EXPECT_EQ(*store_->AddEvent(ids[2], "state", R"({"state": "searching"})"), 1);
  EXPECT_EQ(*store_->AddEvent(ids[2], "episode", R"({"episode": 1})"), 2);

  store_.reset();
  store_ = ServerStore::Open(path_).value();
  JobRecord back = *store_->GetJob(ids[2]);
  EXPECT_EQ(back.state, kJobSearching);
  EXPECT_EQ(back.checkpoint, std::string("agent\0state", 11));
  EXPECT_EQ(back.request_json, "{\"n\": 2}");
  auto events = store_->EventsAfter(ids[2], 1);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "episode");

  JobFilter f;
  f.page_size = 2;
  std::string next;
  auto page1 = store_->ListJobs(f, &next);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, ids[0]);
  f.page_token = next;
  auto page2 = store_->ListJobs(f, &next);
  EXPECT_EQ((*page2)[0].id, ids[2]);
  EXPECT_EQ((*page2)[0].state, kJobSearching);
  EXPECT_TRUE((*page2)[0].checkpoint.empty());  // listings leave the snapshot out
  f.page_token = next;
  auto page3 = store_->ListJobs(f, &next);
  EXPECT_EQ(page3->size(), 1u);
  EXPECT_TRUE(next.empty());
  JobFilter bob;
  bob.owner = "bob";
  EXPECT_EQ(store_->ListJobs(bob, nullptr)->size(), 2u);
  EXPECT_EQ(store_->JobsInStates({kJobSearching})->size(), 1u);
  EXPECT_EQ(store_->GetJob("job-nope").status().code(), StatusCode::kNotFound);
  JobFilter bad;
  bad.page_token = "job-nope";
  EXPECT_EQ(store_->ListJobs(bad, nullptr).status().code(), StatusCode::kInvalidArgument);
}

// The quota's measure: what a user uploaded and the artifacts their jobs' progress lists
// (as a runner records them, while the job runs), each blob once; other users' blobs and a
// progress that does not parse count nothing.
TEST_F(ServerStoreTest, StoredBytesSumEveryBlobStoredForItsOwnerOnce) {
  auto job = [&](const std::string& owner) {
    JobRecord j;
    j.owner = owner;
    j.request_json = "{}";
    return store_->CreateJob(j).value().id;
  };
  EXPECT_EQ(*store_->StoredBytes("alice"), 0);
  ASSERT_TRUE(store_->RecordStoredBlob("alice", "model", 100).ok());
  ASSERT_TRUE(store_->RecordStoredBlob("alice", "model", 100).ok());  // uploaded again
  EXPECT_EQ(*store_->StoredBytes("alice"), 100);

  // A job's blobs count for its owner once stored, whatever its progress lists.
  const std::string first = job("alice");
  ASSERT_TRUE(store_->RecordJobBlob(first, "pt", 1000).ok());
  ASSERT_TRUE(store_->RecordJobBlob(first, "report", 10).ok());
  ASSERT_TRUE(store_->RecordJobBlob(first, "model", 100).ok());  // the uploaded model: once
  EXPECT_EQ(*store_->StoredBytes("alice"), 1110);
  JobProgress next_round;  // a later round lists a new report only
  next_round.artifacts = {{"report.json", "report-2", 20}};
  ASSERT_TRUE(store_->UpdateJobProgress(first, next_round.ToJson().dump()).ok());
  EXPECT_EQ(*store_->StoredBytes("alice"), 1110);  // listing a blob is not storing it
  ASSERT_TRUE(store_->RecordJobBlob(first, "report-2", 20).ok());
  EXPECT_EQ(*store_->StoredBytes("alice"), 1130);  // the earlier round's still count

  ASSERT_TRUE(store_->RecordJobBlob(job("alice"), "pt", 1000).ok());  // another job, the same export
  EXPECT_EQ(*store_->StoredBytes("alice"), 1130);
  ASSERT_TRUE(store_->RecordJobBlob(job("bob"), "pt", 1000).ok());
  EXPECT_EQ(*store_->StoredBytes("bob"), 1000);
  EXPECT_EQ(*store_->StoredBytes("carol"), 0);
  EXPECT_EQ(*store_->StoredBytes("alice"), 1130);
  EXPECT_EQ(store_->RecordJobBlob("job-missing", "x", 1).code(), StatusCode::kNotFound);
}

// A store of schema version 5 (a table of uploads; the quota read the artifacts from the
// jobs' progress) keeps its quotas: migrated, the artifacts its jobs list join once.
TEST_F(ServerStoreTest, AnOlderStoreKeepsItsQuotasWithTheArtifactsItsJobsListJoinedOnce) {
  JobProgress exported;
  exported.artifacts = {{"compressed.pt", "pt", 1000}, {"model.pt", "model", 100}};
  const std::string listed = exported.ToJson().dump();
  for (const auto& [owner, progress] :
       std::vector<std::pair<std::string, std::string>>{{"alice", listed},
                                                        {"alice", listed},
                                                        {"alice", "not json"},
                                                        {"alice", R"({"artifacts": "none"})"},
                                                        {"alice", R"({"artifacts": [{"sha256": "no-bytes"}, 7]})"},
                                                        {"bob", listed}}) {
    JobRecord j;
    j.owner = owner;
    j.request_json = "{}";
    j.progress_json = progress;
    ASSERT_TRUE(store_->CreateJob(j).ok());
  }
  store_.reset();
  {
    auto db = Db::Open(path_).value();
    ASSERT_TRUE(db->Exec("INSERT INTO uploads (owner, sha256, bytes) VALUES ('alice', 'model', 100), "
                         "('alice', 'data', 5); UPDATE schema_migrations SET version = 5 WHERE component = 'server'")
                    .ok());
  }
  for (int open = 0; open < 2; ++open) {  // reopened: nothing joins twice
    store_ = ServerStore::Open(path_).value();
    EXPECT_EQ(*store_->StoredBytes("alice"), 1105);
    EXPECT_EQ(*store_->StoredBytes("bob"), 1100);
    store_.reset();
  }
  store_ = ServerStore::Open(path_).value();
}

TEST_F(ServerStoreTest, EventsKeepTheirTimeToTheMillisecondAndThoseOfOlderServersToTheSecond) {
  const std::string id = store_->CreateJob(JobRecord{}).value().id;
  EXPECT_FALSE(store_->LastEvent(id).value().has_value());
  ASSERT_EQ(*store_->AddEvent(id, "state", R"({"state": "queued"})"), 1);
  ASSERT_EQ(*store_->AddEvent(id, "episode", R"({"episode": 1})"), 2);
  ASSERT_EQ(*store_->AddEvent(id, "episode", R"({"episode": 2})"), 3);
  // As older servers stored them: to the second; and a time that does not parse.
  store_.reset();
  {
    auto db = Db::Open(path_).value();
    ASSERT_TRUE(db->Exec("UPDATE job_events SET created = '2026-01-02T03:04:05Z' WHERE seq = 1").ok());
    ASSERT_TRUE(db->Exec("UPDATE job_events SET created = '' WHERE seq = 2").ok());
  }
  store_ = ServerStore::Open(path_).value();
  std::vector<JobEventRecord> events = store_->EventsAfter(id, 0).value();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].time_ms, 1767323045000);
  EXPECT_EQ(events[1].time_ms, 0);  // unknown
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_NEAR(static_cast<double>(events[2].time_ms), static_cast<double>(now_ms), 60e3);
  std::optional<JobEventRecord> last = store_->LastEvent(id).value();
  EXPECT_TRUE(last && last->seq == 3 && last->time_ms == events[2].time_ms);
}

TEST_F(ServerStoreTest, ExpiredLeasesAreRequeuedAndRepeatedFailuresFail) {
  StatusOr<WorkerRecord> w1 = Register("w1");
  ASSERT_TRUE(w1.ok());
  StatusOr<WorkerRecord> w2 = Register("w2");
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(store_->ListWorkers()->size(), 2u);
  EXPECT_EQ(store_->TouchWorker("worker-nope", 5).code(), StatusCode::kNotFound);

  const TaskRecord t = KernelTask("job-x");
  const std::string a = store_->EnqueueTask(t)->id, b = store_->EnqueueTask(t)->id;
  TaskRecord other = t;
  other.machine_id = "arm64-neon";
  store_->EnqueueTask(other);

  // w1 leases both tasks of its machine, then dies.
  auto leased = store_->LeaseTasks(w1->id, w1->machine_id, 5, 2000, 1000);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  EXPECT_EQ((*leased)[0].id, a);
  EXPECT_TRUE(store_->LeaseTasks(w2->id, w2->machine_id, 5, 2100, 1000)->empty());
  EXPECT_EQ(*store_->RequeueExpired(2500, 3), 0);  // not expired yet
  EXPECT_EQ(*store_->RequeueExpired(3000, 3), 2);
  // w2 gets them; w1's late report is refused and changes nothing.
  auto again = store_->LeaseTasks(w2->id, w2->machine_id, 5, 3100, 1000);
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].attempts, 2);
  EXPECT_FALSE(*store_->ReportTask(w1->id, a, true, "{\"late\": 1}", "", 3));
  EXPECT_TRUE(*store_->ReportTask(w2->id, a, true, "{\"median_us\": 5}", "", 3));
  EXPECT_FALSE(*store_->ReportTask(w2->id, a, true, "{\"median_us\": 6}", "", 3));  // idempotent
  TaskRecord done = *store_->GetTask(a);
  EXPECT_EQ(done.state, kTaskDone);
  EXPECT_EQ(done.result_json, "{\"median_us\": 5}");
  // Heartbeats extend held leases and name the lost ones.
  auto lost = store_->ExtendLeases(w2->id, {a, b}, 3500, 1000);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(*lost, std::vector<std::string>{a});
  EXPECT_EQ(*store_->RequeueExpired(4200, 3), 0);  // b's lease runs to 4500 now
  // b fails on its second attempt (requeued), and on its third for good.
  EXPECT_TRUE(*store_->ReportTask(w2->id, b, false, "", "kernel crashed", 3));
  EXPECT_EQ(store_->GetTask(b)->state, kTaskQueued);
  ASSERT_EQ(store_->LeaseTasks(w1->id, w1->machine_id, 5, 5000, 1000)->size(), 1u);
  EXPECT_TRUE(*store_->ReportTask(w1->id, b, false, "", "kernel crashed", 3));
  TaskRecord failed = *store_->GetTask(b);
  EXPECT_EQ(failed.state, kTaskFailed);
  EXPECT_EQ(failed.error, "failed after 3 attempts: kernel crashed");
  EXPECT_EQ(store_->TasksOfJob("job-x")->size(), 3u);
}

// FailOpenTasks fails only the named open tasks of the job.
TEST_F(ServerStoreTest, FailOpenTasksFailsOnlyTheNamedOpenTasksOfTheJob) {
  const std::string leased = LeaseNewTask("job-x").id;
  const TaskRecord t = KernelTask("job-x");
  const std::string named = store_->EnqueueTask(t)->id, unnamed = store_->EnqueueTask(t)->id;
  const std::string of_other_job = store_->EnqueueTask(KernelTask("job-y"))->id;

  StatusOr<int> failed = store_->FailOpenTasks("job-x", {leased, named, of_other_job, "task-nope"}, "given up");
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(*failed, 2);
  ExpectFailed({leased, named}, "given up");
  EXPECT_EQ(store_->GetTask(unnamed)->state, kTaskQueued);
  EXPECT_EQ(store_->GetTask(of_other_job)->state, kTaskQueued);
  // Ended tasks are not failed again.
  EXPECT_EQ(*store_->FailOpenTasks("job-x", {leased, named}, "again"), 0);
  EXPECT_EQ(store_->GetTask(leased)->error, "given up");
}

// FailOpenTasksOfJob fails every queued and leased task of the job, and nothing else; an
// empty list of ids fails nothing.
TEST_F(ServerStoreTest, FailOpenTasksOfJobFailsEveryOpenTaskOfTheJobOnly) {
  const TaskRecord done = LeaseNewTask("job-x");
  ASSERT_TRUE(*store_->ReportTask(done.worker_id, done.id, true, "{}", "", 3));
  const std::string leased = LeaseNewTask("job-x").id;
  const std::string queued = store_->EnqueueTask(KernelTask("job-x"))->id;
  const std::string of_other_job = store_->EnqueueTask(KernelTask("job-y"))->id;

  EXPECT_EQ(*store_->FailOpenTasks("job-y", {}, "nothing named"), 0);
  StatusOr<int> failed = store_->FailOpenTasksOfJob("job-x", "cancelled");
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(*failed, 2);
  ExpectFailed({leased, queued}, "cancelled");
  EXPECT_EQ(store_->GetTask(done.id)->state, kTaskDone);
  EXPECT_EQ(store_->GetTask(of_other_job)->state, kTaskQueued);
  EXPECT_EQ(*store_->FailOpenTasksOfJob("job-x", "again"), 0);
  EXPECT_EQ(store_->GetTask(queued)->error, "cancelled");
}

// A kernel task's measurement is stored in the transaction that completes the task: both or
// neither.
TEST_F(ServerStoreTest, AKernelTaskIsDoneOnlyWithItsMeasurementStored) {
  StatusOr<WorkerRecord> w1 = Register("w1");
  ASSERT_TRUE(w1.ok());
  const TaskRecord t = KernelTask("job-k");
  const std::string a = store_->EnqueueTask(t)->id, b = store_->EnqueueTask(t)->id;
  ASSERT_EQ(store_->LeaseTasks(w1->id, w1->machine_id, 5, 2000, 60000)->size(), 2u);
  auto measurements = predictors::OpenSqliteStore(path_);
  ASSERT_TRUE(measurements.ok()) << measurements.status().ToString();
  predictors::KernelRecord record;
  record.device_class = kMachine;
  record.spec.op = "conv2d";
  record.spec.in_channels = 8;
  record.spec.out_channels = 8;
  record.spec.kernel = {3, 3};
  record.spec.padding = {1, 1};
  record.spec.input = {1, 8, 8, 8};
  record.median_us = 5;
  record.min_us = 4;
  record.source = "farm";
  record.record_json = "{\"median_us\": 5}";
  std::vector<predictors::KernelRecord> batch = {record};
  ASSERT_TRUE(*store_->ReportTask(w1->id, a, true, record.record_json, "", 3, &batch));
  EXPECT_GT(batch[0].id, 0);
  EXPECT_EQ((*measurements)->Kernels(kMachine)->size(), 1u);
  // Reported again (a retry): refused, nothing stored twice.
  EXPECT_FALSE(*store_->ReportTask(w1->id, a, true, record.record_json, "", 3, &batch));
  EXPECT_EQ((*measurements)->Kernels(kMachine)->size(), 1u);

  // The measurement cannot be stored: the task stays leased, to be reported again.
  {
    auto db = Db::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TRIGGER refuse BEFORE INSERT ON kernel_measurements "
                            "BEGIN SELECT RAISE(ABORT, 'disk full'); END").ok());
  }
  std::vector<predictors::KernelRecord> second = {record};
  StatusOr<bool> refused = store_->ReportTask(w1->id, b, true, record.record_json, "", 3, &second);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(store_->GetTask(b)->state, kTaskLeased);
  EXPECT_EQ(store_->GetTask(b)->result_json, "");
  EXPECT_EQ((*measurements)->Kernels(kMachine)->size(), 1u);
}

}  // namespace
}  // namespace acs::server

namespace acs::server {
namespace {

TEST(BlobStoreTest, ContentAddressedWholeOrAbsentAndLimited) {
  const std::string root = std::filesystem::temp_directory_path() / ("acs_blobs_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  auto store = BlobStore::Open(root);
  ASSERT_TRUE(store.ok());
  auto a = (*store)->Put("model bytes");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->sha256, Sha256Hex("model bytes"));
  EXPECT_FALSE(a->deduplicated);
  // The same bytes in chunks: one copy.
  auto w = (*store)->NewWriter(100);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("model ").ok());
  ASSERT_TRUE((*w)->Append("bytes").ok());
  auto b = (*w)->Commit();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->sha256, a->sha256);
  EXPECT_TRUE(b->deduplicated);
  EXPECT_EQ(*(*store)->Read(a->sha256), "model bytes");
  // Over the limit: refused, nothing left behind.
  {
    auto big = (*store)->NewWriter(4);
    ASSERT_TRUE(big.ok());
    EXPECT_EQ((*big)->Append("12345").code(), StatusCode::kResourceExhausted);
  }
  EXPECT_TRUE(std::filesystem::is_empty(std::filesystem::path(root) / "tmp"));
  EXPECT_EQ((*store)->PathOf("xyz").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->PathOf(Sha256Hex("other")).status().code(), StatusCode::kNotFound);
  // A writer's file left by a killed process is removed at the next start; blobs stay.
  std::ofstream(std::filesystem::path(root) / "tmp" / "upload-of-a-killed-server") << "half";
  EXPECT_EQ(*(*store)->RemoveUnfinishedWrites(), 1);
  EXPECT_TRUE(std::filesystem::is_empty(std::filesystem::path(root) / "tmp"));
  EXPECT_EQ(*(*store)->Read(a->sha256), "model bytes");
  std::filesystem::remove_all(root);
}

// A job runner's writers use its own temporary dir (made when missing); a file planted under
// a blob's name before the blob arrives is replaced, not taken for the blob.
TEST(BlobStoreTest, OwnTemporaryDirAndPlantedNamesReplaced) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("acs_blobs_planted_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto store = BlobStore::Open(root.string());
  ASSERT_TRUE(store.ok());
  const std::string sha = Sha256Hex("the real bytes");
  fs::create_directories(fs::path((*store)->blob_dir()) / sha.substr(0, 2));
  std::ofstream(fs::path((*store)->blob_dir()) / sha.substr(0, 2) / sha) << "planted";
  (*store)->set_temp_dir((root / "work" / "job-1").string());
  auto put = (*store)->Put("the real bytes");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->sha256, sha);
  EXPECT_FALSE(put->deduplicated);
  EXPECT_EQ(*(*store)->Read(sha), "the real bytes");
  EXPECT_TRUE((*store)->Verify(sha).ok());
  EXPECT_TRUE(fs::is_empty(root / "work" / "job-1"));
  EXPECT_TRUE(fs::is_empty(root / "tmp"));
  auto again = (*store)->Put("the real bytes");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  fs::remove_all(root);
}

}  // namespace
}  // namespace acs::server
