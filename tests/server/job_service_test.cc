// The client API's rules without a transport (server/job_service.h) on a real SQLite store
// in a temporary directory: who sees which job, the watcher cap, the watch as a cursor over
// timed events, uploads within their limits, artifacts that cannot be read.
#include "server/job_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/sqlite_db.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;

const Principal kAlice{1, "alice", Role::kUser};
const Principal kBob{2, "bob", Role::kUser};
const Principal kAdmin{3, "root", Role::kAdmin};
const Principal kWorker{4, "worker-1", Role::kWorker};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class JobServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(parts_.Open().ok());
    store_ = parts_.store.get();
    blobs_ = parts_.blobs.get();
    jobs_ = parts_.jobs.get();
    db_path_ = parts_.db_path();
    JobServiceOptions options;
    options.max_upload_bytes = 100;
    options.max_user_stored_bytes = 150;
    options.max_watchers_per_user = 1;
    service_ = std::make_unique<JobService>(JobServiceParts::Of(parts_), options);
  }
  void TearDown() override { service_.reset(); }

  std::string StoredJob(const std::string& owner, const std::string& state, const JobProgress& progress = {}) {
    return parts_.StoredJob(owner, state, progress);
  }

  // Every event `who` is sent watching `id` after `after_seq`, and the watch's status.
  std::pair<Status, std::vector<JobEventView>> WatchAll(const Principal& who, const std::string& id,
                                                        int64_t after_seq) {
    std::vector<JobEventView> events;
    Status s = service_->Watch(
        who, id, after_seq,
        [&](const JobEventView& e) {
          events.push_back(e);
          return true;
        },
        nullptr);
    return {s, events};
  }

  // An upload of `pieces`, the first announcing `announced` bytes.
  StatusOr<BlobWriter::Committed> Upload(const Principal& who, std::vector<std::string> pieces, int64_t announced) {
    size_t next = 0;
    return service_->Upload(
        who, "model",
        [&](UploadPiece* piece) {
          if (next == pieces.size()) return false;
          piece->total_bytes = next == 0 ? announced : 0;
          piece->data = pieces[next++];
          return true;
        },
        [] { return false; });
  }

  test::SchedulerParts parts_{"acs_job_service_"};
  ServerStore* store_ = nullptr;
  BlobStore* blobs_ = nullptr;
  JobScheduler* jobs_ = nullptr;
  std::string db_path_;
  std::unique_ptr<JobService> service_;
};

TEST_F(JobServiceTest, AnotherUsersJobIsNotFound) {
  const std::string id = StoredJob("alice", kJobSucceeded);
  ASSERT_TRUE(store_->AddEvent(id, kEventState, R"({"state": "succeeded"})").ok());
  EXPECT_EQ(service_->Get(kAlice, id)->owner, "alice");
  EXPECT_EQ(service_->Get(kAdmin, id)->id, id);

  StatusOr<JobRecord> seen = service_->Get(kBob, id);
  EXPECT_EQ(seen.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(seen.status().message(), "no job '" + id + "'");  // as for an unknown id
  EXPECT_EQ(service_->Get(kBob, "job-000000000000").status().message(), "no job 'job-000000000000'");
  EXPECT_EQ(service_->Cancel(kBob, id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(WatchAll(kBob, id, 0).first.code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->DownloadArtifact(kBob, id, "compressed.pt", [](const ArtifactPiece&) { return true; }).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->Get(kAlice, "").status().code(), StatusCode::kInvalidArgument);

  EXPECT_TRUE(service_->List(kBob, {})->jobs.empty());
  EXPECT_EQ(service_->List(kAlice, {})->jobs.size(), 1u);
  EXPECT_EQ(service_->List(kAdmin, {})->jobs.size(), 1u);
  JobListQuery queued;
  queued.state = kJobQueued;
  EXPECT_TRUE(service_->List(kAdmin, queued)->jobs.empty());
}

TEST_F(JobServiceTest, RolesAreCheckedOnThePrincipal) {
  EXPECT_EQ(service_->List(kWorker, {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->Devices(kWorker).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->TrainPredictor(kAlice, "cpu", 10).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service_->PredictorStatus(kAlice, "").status().code(), StatusCode::kInvalidArgument);
  StatusOr<predictors::EvalReport> report = service_->EvaluatePredictor(kAlice, "cpu");
  EXPECT_EQ(report.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(report.status().message(), "no kernel measurements of device class 'cpu'");
}

TEST_F(JobServiceTest, WatchersPastTheCapAreRefusedWhileTheFirstLasts) {
  const std::string running = StoredJob("alice", kJobSearching);
  ASSERT_TRUE(store_->AddEvent(running, kEventState, R"({"state": "searching"})").ok());
  std::atomic<bool> received{false}, gone{false};
  Status first_status = Status::Internal("not returned");
  std::thread first([&] {
    first_status = service_->Watch(
        kAlice, running, 0,
        [&](const JobEventView&) {
          received = true;
          return true;
        },
        [&] { return gone.load(); });
  });
  while (!received) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  auto [refused, none] = WatchAll(kAlice, running, 0);
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(), "alice is watching 1 jobs already, this server's limit per user");
  EXPECT_TRUE(none.empty());
  // The cap is per user: bob's watch is refused for what he may see, not for alice's.
  EXPECT_EQ(WatchAll(kBob, running, 0).first.code(), StatusCode::kNotFound);

  gone = true;  // the caller went away: the watch ends within its wait
  first.join();
  EXPECT_TRUE(first_status.ok()) << first_status.ToString();
  // The slot is free again: a watch of an ended job runs to its end.
  const std::string ended = StoredJob("alice", kJobFailed);
  ASSERT_TRUE(store_->AddEvent(ended, kEventState, R"({"state": "failed"})").ok());
  auto [ok, events] = WatchAll(kAlice, ended, 0);
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(JobServiceTest, WatchAfterASeqSendsOnlyLaterEventsWithTheirTime) {
  const int64_t before = NowMs();
  const std::string id = StoredJob("alice", kJobSearching);
  ASSERT_EQ(*store_->AddEvent(id, kEventState, R"({"state": "searching"})"), 1);
  ASSERT_EQ(*store_->AddEvent(id, kEventEpisode, R"({"episode": 1, "reward": 0.5})"), 2);
  ASSERT_EQ(*store_->AddEvent(id, kEventEpisode, R"({"episode": 2, "reward": 0.7, "accuracy": 0.9})"), 3);
  ASSERT_EQ(*store_->AddEvent(id, kEventVerified,
                              R"({"rank": 0, "policy_hash": "abc", "measured_us": 80, "dense_measured_us": 200,
                                  "predicted_us": 90})"),
            4);
  JobRecord job = *store_->GetJob(id);
  job.state = kJobSucceeded;
  ASSERT_TRUE(store_->UpdateJob(job).ok());
  ASSERT_EQ(*store_->AddEvent(id, kEventState, R"({"state": "succeeded", "message": "done"})"), 5);
  const int64_t after = NowMs();

  auto [status, events] = WatchAll(kAlice, id, 2);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].seq, 3);
  EXPECT_EQ(events[0].kind, kEventEpisode);
  EXPECT_EQ(events[0].episode, 2);
  EXPECT_DOUBLE_EQ(events[0].accuracy, 0.9);
  EXPECT_EQ(events[1].seq, 4);
  EXPECT_EQ(events[1].message, "policy #1 abc: measured 80 us (dense 200 us), predicted 90 us");
  EXPECT_EQ(events[2].seq, 5);
  EXPECT_EQ(events[2].state, kJobSucceeded);
  EXPECT_EQ(events[2].message, "done");
  for (const JobEventView& e : events) {
    EXPECT_GE(e.time_ms, before);
    EXPECT_LE(e.time_ms, after);
    EXPECT_EQ(e.job.state, kJobSucceeded);
  }
  EXPECT_EQ(WatchAll(kAlice, id, 0).second.size(), 5u);
  // Past the last event of an ended job: nothing to send, and the watch ends.
  auto [past_end, nothing] = WatchAll(kAlice, id, 5);
  EXPECT_TRUE(past_end.ok()) << past_end.ToString();
  EXPECT_TRUE(nothing.empty());
  EXPECT_EQ(WatchAll(kAlice, id, -1).first.code(), StatusCode::kInvalidArgument);

  // An event whose stored time does not parse has none.
  auto db = Db::Open(db_path_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Exec("UPDATE job_events SET created = '' WHERE seq = 5").ok());
  EXPECT_EQ(WatchAll(kAlice, id, 4).second.at(0).time_ms, 0);
}

class JobServiceArtifactTest : public JobServiceTest {
 protected:
  // A succeeded job of alice's with one artifact "compressed.pt" holding `bytes_`.
  void SetUp() override {
    JobServiceTest::SetUp();
    StatusOr<BlobWriter::Committed> blob = blobs_->Put(bytes_);
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    sha256_ = blob->sha256;
    JobProgress progress;
    progress.artifacts.push_back({"compressed.pt", blob->sha256, blob->bytes});
    id_ = StoredJob("alice", kJobSucceeded, progress);
  }
  Status Download(std::string* received) {
    return service_->DownloadArtifact(kAlice, id_, "compressed.pt", [&](const ArtifactPiece& piece) {
      if (piece.first) {
        EXPECT_EQ(piece.sha256, sha256_);
        EXPECT_EQ(piece.total_bytes, static_cast<int64_t>(bytes_.size()));
      }
      *received += piece.data;
      return true;
    });
  }
  std::string bytes_ = "the compressed model's bytes";
  std::string sha256_, id_;
};

TEST_F(JobServiceArtifactTest, StreamsTheArtifact) {
  std::string received;
  ASSERT_TRUE(Download(&received).ok());
  EXPECT_EQ(received, bytes_);
  Status missing = service_->DownloadArtifact(kAlice, id_, "report.json", [](const ArtifactPiece&) { return true; });
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "job " + id_ + " has no artifact 'report.json' (it has compressed.pt)");
}

TEST_F(JobServiceArtifactTest, AnUnreadableBlobIsAnErrorNotZeroBytes) {
  const std::string path = blobs_->PathOf(sha256_).value();
  fs::remove(path);
  fs::create_directory(path);  // there, but no bytes can be read from it
  std::string received;
  Status s = Download(&received);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("artifact compressed.pt of job " + id_ + " is damaged on the server"), std::string::npos)
      << s.message();
  EXPECT_TRUE(received.empty());
}

TEST_F(JobServiceArtifactTest, ADamagedBlobIsRefused) {
  const std::string path = blobs_->PathOf(sha256_).value();
  fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "other bytes";
  }
  std::string received;
  EXPECT_EQ(Download(&received).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(received.empty());
}

TEST_F(JobServiceTest, UploadsStayWithinTheLimitAndTheQuota) {
  StatusOr<BlobWriter::Committed> first = Upload(kAlice, {std::string(60, 'a'), std::string(20, 'b')}, 80);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->bytes, 80);

  StatusOr<BlobWriter::Committed> too_large = Upload(kAlice, {std::string(101, 'c')}, 101);
  EXPECT_EQ(too_large.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(too_large.status().message(), "upload of 101 bytes exceeds the limit of 100 bytes");
  // 80 of alice's 150 are used: 90 more would pass her quota, whether announced or not.
  EXPECT_EQ(Upload(kAlice, {std::string(90, 'd')}, 90).status().code(), StatusCode::kResourceExhausted);
  StatusOr<BlobWriter::Committed> unannounced = Upload(kAlice, {std::string(50, 'e'), std::string(40, 'e')}, 0);
  EXPECT_EQ(unannounced.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(unannounced.status().message().find("alice stores 80 bytes (uploads and job artifacts) of a quota of 150"),
            std::string::npos)
      << unannounced.status().message();
  // Bob's quota is his own.
  EXPECT_TRUE(Upload(kBob, {std::string(90, 'd')}, 90).ok());

  EXPECT_EQ(Upload(kAlice, {}, 0).status().message(), "an upload needs at least one chunk");
  EXPECT_EQ(Upload(kAlice, {"abc"}, 5).status().message(),
            "the upload announced 5 bytes and sent 3; nothing was stored");
  EXPECT_EQ(Upload(kWorker, {"abc"}, 3).status().code(), StatusCode::kPermissionDenied);
  size_t sent = 0;
  StatusOr<BlobWriter::Committed> interrupted = service_->Upload(
      kAlice, "dataset",
      [&](UploadPiece* piece) {
        piece->data = "xyz";
        return sent++ == 0;
      },
      [] { return true; });
  EXPECT_EQ(interrupted.status().code(), StatusCode::kCancelled);
}

// Every blob a user's jobs store counts against that user's quota, each once, also one
// their progress no longer lists: once over it, their next upload and Submit are refused,
// naming the stored bytes, the quota and the flag that sets it; another user's are not. At
// the quota exactly, a Submit is still taken (its job may pass it).
TEST_F(JobServiceTest, JobArtifactsCountAgainstTheQuotaOfTheirOwnerOnly) {
  const JobRequest request;  // no input shape: a Submit past the quota check is InvalidArgument
  LocalJobHost host(store_, blobs_, parts_.farm.get(), parts_.measurement_campaigns.get());
  const std::string first = StoredJob("alice", kJobSucceeded);
  const BlobWriter::Committed model = host.PutBlob(first, std::string(140, 'm')).value();
  const BlobWriter::Committed report = host.PutBlob(first, std::string(10, '1')).value();
  JobProgress progress;
  progress.artifacts = {{"compressed.pt", model.sha256, model.bytes}, {"report.json", report.sha256, report.bytes}};
  ASSERT_TRUE(store_->UpdateJobProgress(first, progress.ToJson().dump()).ok());
  ASSERT_TRUE(host.PutBlob(StoredJob("alice", kJobSucceeded), std::string(140, 'm')).ok());  // the same export
  ASSERT_TRUE(host.PutBlob(StoredJob("bob", kJobSucceeded), std::string(100, 'b')).ok());
  EXPECT_EQ(service_->Submit(kAlice, request).status().code(), StatusCode::kInvalidArgument);

  // A later round's report replaces the first in the progress; both stay stored.
  const BlobWriter::Committed rewritten = host.PutBlob(first, std::string(10, '2')).value();
  progress.artifacts[1] = {"report.json", rewritten.sha256, rewritten.bytes};
  ASSERT_TRUE(store_->UpdateJobProgress(first, progress.ToJson().dump()).ok());
  const std::string stored = "alice stores 160 bytes (uploads and job artifacts) of a quota of 150";
  StatusOr<BlobWriter::Committed> upload = Upload(kAlice, {"x"}, 1);
  EXPECT_EQ(upload.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(upload.status().message(),
            stored + "; this upload of 1 bytes would pass it (ask an admin to raise --max-user-storage-mb)");
  StatusOr<JobRecord> submitted = service_->Submit(kAlice, request);
  EXPECT_EQ(submitted.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(submitted.status().message(), stored + ", over it: no new job until an admin raises --max-user-storage-mb");

  EXPECT_TRUE(Upload(kBob, {"x"}, 1).ok());
  EXPECT_EQ(service_->Submit(kBob, request).status().code(), StatusCode::kInvalidArgument);
}

// A user's job may read only blobs that user stored (uploaded, or stored by one of their
// jobs): another user's model or data, named by its hash, is refused as an unknown one is;
// an admin may name any.
TEST_F(JobServiceTest, AJobReadsOnlyTheBlobsItsOwnerStored) {
  const BlobWriter::Committed model = Upload(kAlice, {"alice's model"}, 13).value();
  const std::string refused = " was not uploaded to this server by bob";
  JobRequest request;  // no input shape: a Submit past the ownership check is refused for that
  request.model_sha256 = model.sha256;
  StatusOr<JobRecord> bob = service_->Submit(kBob, request);
  EXPECT_EQ(bob.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bob.status().message(), "model " + model.sha256 + refused);
  for (const Principal& who : {kAlice, kAdmin}) {
    StatusOr<JobRecord> past = service_->Submit(who, request);
    EXPECT_EQ(past.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(past.status().message().find("was not uploaded to this server by"), std::string::npos)
        << past.status().message();
  }
  // Alice's data named in bob's request, or a hash nobody stored: the same refusal.
  JobRequest data = request;
  data.model_sha256 = Upload(kBob, {"bob's model"}, 11).value().sha256;
  data.test_dataset_sha256 = model.sha256;
  EXPECT_EQ(service_->Submit(kBob, data).status().message(), "test dataset " + model.sha256 + refused);
  data.test_dataset_sha256.clear();
  data.dataset_sha256 = std::string(64, 'f');
  EXPECT_EQ(service_->Submit(kBob, data).status().message(), "dataset " + std::string(64, 'f') + refused);
  // The same bytes uploaded by bob are his too; a blob bob's job stored is his.
  EXPECT_TRUE(Upload(kBob, {"alice's model"}, 13).ok());
  EXPECT_EQ(service_->Submit(kBob, request).status().message().find(refused), std::string::npos);
  LocalJobHost host(store_, blobs_, parts_.farm.get(), parts_.measurement_campaigns.get());
  request.model_sha256 = host.PutBlob(StoredJob("bob", kJobSucceeded), "bob's compressed.pt").value().sha256;
  EXPECT_EQ(service_->Submit(kBob, request).status().message().find(refused), std::string::npos);
  EXPECT_EQ(service_->Submit(kAlice, request).status().message(),
            "model " + request.model_sha256 + " was not uploaded to this server by alice");
}

}  // namespace
}  // namespace acs::server
