// Blob collection: what no record names and nobody stored within the grace period goes,
// file and `uploads` rows; everything a job, campaign run or open task names stays.
#include "server/blob_gc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/sqlite_db.h"
#include "server/job_records.h"
#include "server/job_service.h"
#include "tests/temp_dir.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kGrace = 7 * 24 * 3600;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class BlobGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto store = ServerStore::Open(db_path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto blobs = BlobStore::Open(dir_.path());
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    blobs_ = std::move(*blobs);
  }
  std::string db_path() const { return dir_.path() + "/server.db"; }
  // `bytes` stored and recorded for `owner`, as an upload is; its digest.
  std::string Upload(const std::string& owner, const std::string& bytes) {
    StatusOr<BlobWriter::Committed> put = blobs_->Put(bytes);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    if (!put.ok()) return "";
    EXPECT_TRUE(store_->RecordStoredBlob(owner, put->sha256, put->bytes).ok());
    return put->sha256;
  }
  // A sweep as at `days` days from now.
  BlobGcResult Collect(int days) {
    StatusOr<BlobGcResult> r = CollectBlobs(*store_, *blobs_, kGrace, NowSeconds() + days * 24 * 3600);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : BlobGcResult{};
  }
  std::string StoredJob(const std::string& owner, const std::string& state, const JobRequest& request,
                        const JobProgress& progress = {}) {
    JobRecord job;
    job.owner = owner;
    job.state = state;
    job.request_json = request.ToJson().dump();
    job.progress_json = progress.ToJson().dump();
    StatusOr<JobRecord> created = store_->CreateJob(job);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->id : "";
  }
  // Sets the file's time `days` days back, as if last stored then.
  void AgeFile(const std::string& sha, int days) {
    const std::string path = blobs_->PathOf(sha).value();
    const timespec t{static_cast<time_t>(NowSeconds() - days * 24 * 3600), 0};
    const timespec times[2] = {t, t};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
  bool Stores(const std::string& owner, const std::string& sha) { return store_->StoresBlob(owner, sha).value(); }

  acs::ScopedTempDir dir_{"acs_blob_gc_"};
  std::unique_ptr<ServerStore> store_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_F(BlobGcTest, RemovesAnOldUnreferencedUploadAndItsRows) {
  const std::string sha = Upload("alice", "model bytes");
  ASSERT_TRUE(store_->RecordStoredBlob("bob", sha, 11).ok());  // the same bytes, bob's too
  const BlobGcResult r = Collect(8);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.removed_bytes, 11);
  EXPECT_EQ(r.forgotten, 1);
  EXPECT_FALSE(blobs_->Has(sha));
  EXPECT_FALSE(Stores("alice", sha));
  EXPECT_FALSE(Stores("bob", sha));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/tmp"));  // nothing left parked
  EXPECT_EQ(Collect(8).forgotten, 0);
}

TEST_F(BlobGcTest, KeepsAnUploadWithinTheGracePeriod) {
  const std::string sha = Upload("alice", "just uploaded, not yet submitted");
  EXPECT_EQ(Collect(0).forgotten, 0);
  EXPECT_EQ(Collect(6).forgotten, 0);
  EXPECT_TRUE(blobs_->Has(sha));
  EXPECT_TRUE(Stores("alice", sha));
}

TEST_F(BlobGcTest, KeepsEveryKindOfReference) {
  JobRequest request;
  request.model_sha256 = Upload("alice", "model");
  request.dataset_sha256 = Upload("alice", "dataset");
  request.test_dataset_sha256 = Upload("alice", "test set");
  JobProgress progress;
  progress.artifacts.push_back({"compressed.pt", Upload("alice", "export"), 6});
  JobProgress kept;  // an earlier round's result, kept while a later round searches
  kept.artifacts.push_back({"report.json", Upload("alice", "kept report"), 11});
  progress.kept_result = kept.ToJson().dump();
  StoredJob("alice", kJobSucceeded, request, progress);

  const std::string campaign_model = Upload("carol", "campaign model");
  CampaignRunRecord run;
  run.owner = "carol";
  run.campaign = "nightly";
  run.date = "2026-01-01";
  run.spec_hash = "h";
  nlohmann::json spec = {{"models", nlohmann::json::array()}};
  spec["models"].push_back({{"name", "m"}, {"sha256", campaign_model}});
  run.spec_json = spec.dump();
  run.cells.resize(1);
  run.cells[0].key = "a";
  bool created = false;
  ASSERT_TRUE(store_->StartCampaignRun(run, &created).ok());

  const std::string task_model = Upload("dave", "task model");
  TaskRecord task;
  task.kind = "measure-model";
  task.machine_id = "m";
  task.spec_json = nlohmann::json{{"model_sha256", task_model}}.dump();
  ASSERT_TRUE(store_->EnqueueTask(task).ok());

  const std::string garbage = Upload("alice", "superseded export");
  const BlobGcResult r = Collect(30);
  EXPECT_EQ(r.removed, 1);
  EXPECT_FALSE(blobs_->Has(garbage));
  for (const std::string& sha : {request.model_sha256, request.dataset_sha256, request.test_dataset_sha256,
                                 progress.artifacts[0].sha256, kept.artifacts[0].sha256, campaign_model, task_model}) {
    EXPECT_TRUE(blobs_->Has(sha)) << sha;
  }
  EXPECT_TRUE(Stores("alice", request.model_sha256));
  EXPECT_TRUE(Stores("carol", campaign_model));
  EXPECT_EQ(store_->ReferencedBlobs().value().size(), 7u);
}

TEST_F(BlobGcTest, KeepsTheBlobsOfQueuedAndRunningJobs) {
  JobRequest queued, running;
  queued.model_sha256 = Upload("alice", "queued model");
  running.model_sha256 = Upload("alice", "running model");
  StoredJob("alice", kJobQueued, queued);
  StoredJob("alice", kJobSearching, running);
  EXPECT_EQ(Collect(365).forgotten, 0);
  EXPECT_TRUE(blobs_->Has(queued.model_sha256));
  EXPECT_TRUE(blobs_->Has(running.model_sha256));
}

TEST_F(BlobGcTest, StoredBytesDropsByWhatWasCollected) {
  JobRequest request;
  request.model_sha256 = Upload("alice", "0123456789");  // 10 bytes, named by a job
  StoredJob("alice", kJobFailed, request);
  Upload("alice", "01234567890123456789");  // 20 bytes, named by nothing
  ASSERT_EQ(store_->StoredBytes("alice").value(), 30);
  EXPECT_EQ(Collect(8).removed_bytes, 20);
  EXPECT_EQ(store_->StoredBytes("alice").value(), 10);
}

TEST_F(BlobGcTest, StoringAgainRestartsTheGracePeriod) {
  // A file no row counts (a crash between a put and its record, or within a sweep) goes
  // once old; the same bytes put again meanwhile keep it.
  const std::string orphan = blobs_->Put("orphan").value().sha256;
  const std::string again = blobs_->Put("put again").value().sha256;
  AgeFile(orphan, 10);
  AgeFile(again, 10);
  EXPECT_TRUE(blobs_->Put("put again").value().deduplicated);
  const BlobGcResult r = Collect(0);
  EXPECT_EQ(r.removed, 1);
  EXPECT_FALSE(blobs_->Has(orphan));
  EXPECT_TRUE(blobs_->Has(again));

  // An old upload recorded again: its row's time restarts too.
  const std::string upload = Upload("alice", "uploaded twice");
  AgeFile(upload, 10);
  {
    auto db = Db::Open(db_path());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE uploads SET created = '2000-01-01T00:00:00Z'").ok());
  }
  ASSERT_TRUE(store_->RecordStoredBlob("alice", upload, 14).ok());
  EXPECT_EQ(Collect(0).forgotten, 0);
  EXPECT_TRUE(blobs_->Has(upload));
  EXPECT_EQ(store_->StoredBytes("alice").value(), 14);
}

TEST_F(BlobGcTest, ForgetsRowsWhoseFileIsGone) {
  const std::string sha = Upload("alice", "lost");
  std::filesystem::remove(blobs_->PathOf(sha).value());
  const BlobGcResult r = Collect(8);
  EXPECT_EQ(r.forgotten, 1);
  EXPECT_EQ(r.removed, 0);
  EXPECT_FALSE(Stores("alice", sha));
}

TEST_F(BlobGcTest, RemoveIfStoredBeforeKeepsAFileStoredSince) {
  const std::string sha = blobs_->Put("recent").value().sha256;
  EXPECT_FALSE(blobs_->RemoveIfStoredBefore(sha, NowSeconds() - 60).value());
  EXPECT_TRUE(blobs_->Verify(sha).ok());  // put back whole
  EXPECT_TRUE(blobs_->RemoveIfStoredBefore(sha, NowSeconds() + 60).value());
  EXPECT_FALSE(blobs_->Has(sha));
  EXPECT_FALSE(blobs_->RemoveIfStoredBefore(sha, NowSeconds() + 60).value());  // gone already
}

TEST_F(BlobGcTest, TheServingProcessSweepsAtStart) {
  const std::string sha = blobs_->Put("orphan of an earlier server").value().sha256;
  AgeFile(sha, 10);
  {
    BlobGcOptions options;
    options.interval_seconds = 3600;
    BlobCollector collector(store_.get(), blobs_.get(), options);
  }  // joined: its first sweep is done
  EXPECT_FALSE(blobs_->Has(sha));
}

TEST_F(BlobGcTest, AHeldBlobStaysWhateverItsAgeUntilReleased) {
  const std::string sha = Upload("alice", "model being checked");
  AgeFile(sha, 10);
  EXPECT_EQ(store_->HoldBlob("bob", sha).status().code(), StatusCode::kNotFound);  // not bob's
  {
    StatusOr<BlobHold> hold = store_->HoldBlob("alice", sha);
    ASSERT_TRUE(hold.ok()) << hold.status().ToString();
    StatusOr<BlobHold> again = store_->HoldBlob("", sha);  // an admin's submit of the same blob
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(Collect(365).forgotten, 0);
    BlobHold moved = std::move(*hold);
    *again = BlobHold();  // one hold released: the other still counts
    EXPECT_EQ(Collect(365).forgotten, 0);
    EXPECT_TRUE(blobs_->Has(sha));
  }
  // Released, and the hold counted as storing it again: kept within the grace, not after.
  EXPECT_EQ(Collect(6).forgotten, 0);
  EXPECT_EQ(Collect(8).removed, 1);
  EXPECT_FALSE(blobs_->Has(sha));
}

// A sweep parses the jobs outside the store's lock first (ScanJobBlobs); the transaction
// that forgets takes a job as the scan read it only when it was not updated since, and
// reads the others again: a reference added or dropped after the scan counts as it is then.
TEST_F(BlobGcTest, AJobUpdatedAfterTheScanIsReadAgain) {
  JobRequest unchanged;
  unchanged.model_sha256 = Upload("alice", "named by a job left alone");
  StoredJob("alice", kJobSucceeded, unchanged);
  JobProgress before, after;
  before.artifacts.push_back({"report.json", Upload("alice", "named until after the scan"), 26});
  after.artifacts.push_back({"report.json", Upload("alice", "named once the scan is done"), 27});
  const std::string updated = StoredJob("alice", kJobSearching, JobRequest{}, before);
  JobRequest created;
  created.model_sha256 = Upload("alice", "named by a job stored after the scan");
  const std::string garbage = Upload("alice", "never named");
  {
    auto db = Db::Open(db_path());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE uploads SET created = '2000-01-01T00:00:00Z'").ok());
    ASSERT_TRUE((*db)->Exec("UPDATE jobs SET updated = '2000-01-01T00:00:00Z'").ok());  // read long ago
  }
  const std::vector<std::string> candidates = store_->RecordedBlobs().value();
  ASSERT_EQ(candidates.size(), 5u);
  StatusOr<JobBlobScan> scan = store_->ScanJobBlobs(candidates, 1);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->jobs.size(), 2u);
  EXPECT_EQ(scan->jobs.begin()->second.digests, std::vector<std::string>{unchanged.model_sha256});
  EXPECT_EQ(scan->jobs.rbegin()->second.digests, std::vector<std::string>{before.artifacts[0].sha256});

  ASSERT_TRUE(store_->UpdateJobProgress(updated, after.ToJson().dump()).ok());
  StoredJob("alice", kJobQueued, created);
  StatusOr<std::vector<std::string>> forgotten =
      store_->ForgetUnreferencedBlobs(candidates, NowSeconds() - kGrace, &*scan);
  ASSERT_TRUE(forgotten.ok()) << forgotten.status().ToString();
  std::vector<std::string> expected = {before.artifacts[0].sha256, garbage};
  std::sort(expected.begin(), expected.end());
  std::sort(forgotten->begin(), forgotten->end());
  EXPECT_EQ(*forgotten, expected);
}

// Writes a check program for Submit (SchedulerOptions::runner_program) that marks
// `dir`/checking and then waits for `dir`/go before it passes the check, and returns its path.
std::string WaitingCheckProgram(const fs::path& dir) {
  const fs::path path = dir / "check.sh";
  std::ofstream out(path);
  out << "#!/bin/sh\n[ \"$1\" = check-job ] || exit 3\n/bin/cat > /dev/null\n: > '" << (dir / "checking").string()
      << "'\ni=0\nwhile [ ! -e '" << (dir / "go").string()
      << "' ] && [ $i -lt 1200 ]; do /bin/sleep 0.05; i=$((i + 1)); done\necho '{\"code\": 0, \"message\": \"\"}'\n";
  out.close();
  fs::permissions(path, fs::perms::owner_all);
  return path.string();
}

// The race a hold closes: a submit's blobs were stored long ago, Submit admits them, and
// a sweep runs while the model is checked (a check may take minutes), before the job that
// names them is stored. The sweep keeps them, for a user's submit and for an admin's
// (which may name another user's upload, or a file no row counts).
TEST_F(BlobGcTest, ASweepDuringASubmitsCheckKeepsItsBlobs) {
  const fs::path root = dir_.path();
  SchedulerOptions scheduler;
  scheduler.work_dir = (root / "work").string();
  fs::create_directories(scheduler.work_dir);
  scheduler.runner_program = WaitingCheckProgram(root);
  scheduler.confine_writes = false;
  StatusOr<ServerParts> parts =
      ServerParts::Open({db_path(), root.string(), FarmOptions{}, scheduler, false, BlobGcOptions{}});
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  JobService service(JobServiceParts::Of(*parts), JobServiceOptions{});
  const Principal alice{1, "alice", Role::kUser};
  const Principal admin{2, "root", Role::kAdmin};
  for (const Principal& who : {alice, admin}) {
    SCOPED_TRACE(who.name);
    JobRequest request;
    request.input_shape = {1, 4};
    request.budget_kind = "flops";
    request.agent = "random";
    request.episodes = 1;
    request.model_sha256 = parts->blobs->Put("old model of " + who.name).value().sha256;
    request.dataset_sha256 = parts->blobs->Put("old dataset of " + who.name).value().sha256;
    ASSERT_TRUE(parts->store->RecordStoredBlob("alice", request.model_sha256, 1).ok());
    if (who.role != Role::kAdmin) {  // the admin's dataset: a file no row counts
      ASSERT_TRUE(parts->store->RecordStoredBlob("alice", request.dataset_sha256, 1).ok());
    }
    for (const std::string& sha : {request.model_sha256, request.dataset_sha256}) {
      const timespec t{static_cast<time_t>(NowSeconds() - 10 * 24 * 3600), 0};
      const timespec times[2] = {t, t};
      ASSERT_EQ(utimensat(AT_FDCWD, parts->blobs->PathOf(sha)->c_str(), times, 0), 0);
    }
    {
      auto db = Db::Open(db_path());
      ASSERT_TRUE(db.ok());
      ASSERT_TRUE((*db)->Exec("UPDATE uploads SET created = '2000-01-01T00:00:00Z'").ok());
    }
    fs::remove(root / "checking");
    fs::remove(root / "go");
    StatusOr<JobRecord> submitted = Status::Internal("not yet");
    std::thread submit([&] { submitted = service.Submit(who, request); });
    for (int i = 0; i < 6000 && !fs::exists(root / "checking"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(fs::exists(root / "checking"));  // Submit admitted the blobs and is checking the model
    StatusOr<BlobGcResult> swept = CollectBlobs(*parts->store, *parts->blobs, kGrace, NowSeconds());
    std::ofstream(root / "go").close();
    submit.join();
    ASSERT_TRUE(swept.ok()) << swept.status().ToString();
    ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
    EXPECT_TRUE(parts->store->GetJob(submitted->id).ok());
    EXPECT_TRUE(parts->blobs->Has(request.model_sha256));
    EXPECT_TRUE(parts->blobs->Has(request.dataset_sha256));
    EXPECT_TRUE(parts->store->StoresBlob("alice", request.model_sha256).value());
    // From now on the job names them.
    EXPECT_EQ(CollectBlobs(*parts->store, *parts->blobs, kGrace, NowSeconds() + 365 * 24 * 3600)->removed, 0);
    EXPECT_TRUE(parts->blobs->Has(request.model_sha256));
  }
}

}  // namespace
}  // namespace acs::server
