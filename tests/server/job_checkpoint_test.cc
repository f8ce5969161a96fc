// A job's search checkpoints incrementally (server/job_search.cc): each episode is written
// to the store's episode log once, as it finishes, and the periodic snapshot holds only the
// agent's state and a count. A resume reads the snapshot and the log up to its count:
// episodes logged after the snapshot are re-run, and a format-1 checkpoint of an older
// database still resumes. The jobs run in this process (RunJobHere), as in a job runner.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "agents/search_session.h"
#include "core/sqlite_db.h"
#include "server/jobs.h"
#include "tests/core/test_models.h"
#include "tests/server/scheduler_parts.h"

namespace acs::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The value of `s`, or T{} after failing the test.
template <typename T>
T Must(StatusOr<T> s) {
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : T{};
}

struct Audited {
  std::vector<int64_t> episode_seqs;   // of every row inserted into job_episodes, in order
  std::vector<std::string> snapshots;  // every changed jobs.checkpoint, in order
};

class JobCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test_models::BuildTestModel("plain", 3);
    ASSERT_FALSE(model_.empty());
    ASSERT_NO_FATAL_FAILURE(Open());
  }
  void TearDown() override { Close(); }

  // The parts a job runner opens on the data dir; a snapshot after every episode.
  void Open() {
    SchedulerOptions o;
    o.checkpoint_seconds = 0;
    o.calibration_samples = 16;
    o.validation_samples = 32;
    const Status opened = parts_.Open(o);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    store_ = parts_.store.get();
    blobs_ = parts_.blobs.get();
    jobs_ = parts_.jobs.get();
    db_path_ = parts_.db_path();
  }
  void Close() {
    store_ = nullptr;
    blobs_ = nullptr;
    jobs_ = nullptr;
    parts_.Close();
  }

  // A random search of the test model at half its FLOPs; its id.
  std::string Submit(int episodes) {
    std::ifstream in(model_, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    auto blob = blobs_->Put(bytes);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    JobRequest r;
    r.model_sha256 = blob.ok() ? blob->sha256 : "";
    r.input_shape = test_models::TestInputShape();
    r.dataset_name = "fashion-mnist";
    r.budget_kind = "flops";
    r.agent = "random";
    r.episodes = episodes;
    r.seed = 7;
    r.top_k = 1;
    auto job = jobs_->Submit("alice", r);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? job->id : "";
  }

  // Records every insert into the episode log and every change of a checkpoint from now on.
  void StartAudit() {
    auto db = Db::Open(db_path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec(R"sql(
CREATE TABLE IF NOT EXISTS audit (n INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, seq INTEGER, body BLOB);
DELETE FROM audit;
CREATE TRIGGER IF NOT EXISTS audit_episodes AFTER INSERT ON job_episodes
  BEGIN INSERT INTO audit (kind, seq, body) VALUES ('episode', NEW.seq, NEW.episode_json); END;
CREATE TRIGGER IF NOT EXISTS audit_snapshots AFTER UPDATE OF checkpoint ON jobs WHEN NEW.checkpoint != OLD.checkpoint
  BEGIN INSERT INTO audit (kind, seq, body) VALUES ('snapshot', NULL, NEW.checkpoint); END;
)sql")
                    .ok());
  }
  Audited ReadAudit() {
    Audited out;
    auto db = Db::Open(db_path_);
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return out;
    auto q = (*db)->Prepare("SELECT kind, seq, body FROM audit ORDER BY n");
    EXPECT_TRUE(q.ok());
    while (q.ok()) {
      StatusOr<bool> row = q->Step();
      if (!row.ok() || !*row) break;
      if (q->Text(0) == "episode") out.episode_seqs.push_back(q->Int(1));
      if (q->Text(0) == "snapshot") out.snapshots.push_back(q->Text(2));
    }
    return out;
  }

  std::vector<std::string> Hashes(const std::string& id) {
    std::vector<std::string> out;
    for (const std::string& row : Must(store_->JobEpisodes(id, 1 << 20))) {
      out.push_back(json::parse(row)["policy_hash"].get<std::string>());
    }
    return out;
  }
  // The snapshot written when the log held n episodes.
  static std::string SnapshotAt(const Audited& audit, int n) {
    for (const std::string& s : audit.snapshots) {
      StatusOr<int> covered = SearchSession::LoggedEpisodesNeeded(s);
      if (covered.ok() && *covered == n) return s;
    }
    return "";
  }
  bool HasEvent(const std::string& id, const std::string& text) {
    for (const JobEventRecord& e : Must(store_->EventsAfter(id, 0))) {
      if (e.json.find(text) != std::string::npos) return true;
    }
    return false;
  }
  // Runs the job as a job runner does; it must succeed.
  void Run(const std::string& id) {
    jobs_->RunJobHere(id);
    const JobRecord job = Must(store_->GetJob(id));
    ASSERT_EQ(job.state, kJobSucceeded) << job.error;
  }
  // Sends a finished job back to searching from `checkpoint`, as a crash would leave it.
  void Rewind(const std::string& id, const std::string& checkpoint) {
    JobRecord job = Must(store_->GetJob(id));
    job.state = kJobSearching;
    job.checkpoint = checkpoint;
    ASSERT_TRUE(store_->UpdateJob(job).ok());
  }

  test::SchedulerParts parts_{"acs_job_checkpoint_"};
  std::string db_path_, model_;
  ServerStore* store_ = nullptr;
  BlobStore* blobs_ = nullptr;
  JobScheduler* jobs_ = nullptr;
};

TEST_F(JobCheckpointTest, EachEpisodeIsWrittenOnceAndSnapshotsDoNotGrow) {
  const std::string id = Submit(8);
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(StartAudit());
  ASSERT_NO_FATAL_FAILURE(Run(id));

  const std::vector<std::string> rows = Must(store_->JobEpisodes(id, 1 << 20));
  ASSERT_EQ(rows.size(), 8u);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(json::parse(rows[i])["episode"], i);
  const Audited audit = ReadAudit();
  EXPECT_EQ(audit.episode_seqs, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  // A snapshot after every episode (checkpoint_seconds 0), none holding the log: the last
  // is within one episode's record of the first.
  ASSERT_GE(audit.snapshots.size(), 8u);
  for (int n = 1; n <= 8; ++n) EXPECT_FALSE(SnapshotAt(audit, n).empty()) << n;
  for (const std::string& s : audit.snapshots) {
    EXPECT_LT(s.size(), audit.snapshots.front().size() + rows[0].size()) << s;
    EXPECT_EQ(json::parse(s)["format"], 2) << s;
  }
  EXPECT_EQ(Must(SearchSession::LoggedEpisodesNeeded(Must(store_->GetJob(id)).checkpoint)), 8);
}

// A crash after episodes 3..7 were logged, before a snapshot covered them: the resume
// ignores those rows (never reads them) and re-runs the episodes, which the restored agent
// proposes again; each is written once more.
TEST_F(JobCheckpointTest, EpisodesLoggedAfterTheLastSnapshotAreRerunOnResume) {
  const std::string id = Submit(8);
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(StartAudit());
  ASSERT_NO_FATAL_FAILURE(Run(id));
  const std::vector<std::string> first = Hashes(id);
  const std::string at3 = SnapshotAt(ReadAudit(), 3);
  ASSERT_FALSE(at3.empty());
  ASSERT_NO_FATAL_FAILURE(Rewind(id, at3));
  ASSERT_TRUE(store_->PutJobEpisodes(id, 5, {R"({"stale": true})"}).ok());  // never read

  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(StartAudit());
  ASSERT_NO_FATAL_FAILURE(Run(id));
  EXPECT_TRUE(HasEvent(id, "resumed after episode 3"));
  EXPECT_EQ(Hashes(id), first);
  EXPECT_EQ(ReadAudit().episode_seqs, (std::vector<int64_t>{3, 4, 5, 6, 7}));
}

// A job of an older build: the schema before the episode log, and a format-1 checkpoint
// (the agent and episodes 0..2 in one blob). It resumes, and its log moves into the store.
TEST_F(JobCheckpointTest, AFormatOneCheckpointOfAnOlderDatabaseResumes) {
  const std::string id = Submit(8);
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(StartAudit());
  ASSERT_NO_FATAL_FAILURE(Run(id));
  const std::vector<std::string> first = Hashes(id);
  const std::string snapshot = SnapshotAt(ReadAudit(), 3);
  ASSERT_FALSE(snapshot.empty());
  const json at3 = json::parse(snapshot);
  json v1 = {{"format", 1}, {"agent_name", at3["agent_name"]}, {"agent", at3["agent"]}};
  v1["episodes"] = json::array();
  for (const std::string& row : Must(store_->JobEpisodes(id, 3))) v1["episodes"].push_back(json::parse(row));
  ASSERT_NO_FATAL_FAILURE(Rewind(id, v1.dump()));
  Close();
  {
    auto db = Db::Open(db_path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("DROP TABLE job_episodes; UPDATE schema_migrations SET version = 4 "
                           "WHERE component = 'server'")
                    .ok());
  }

  ASSERT_NO_FATAL_FAILURE(Open());  // migrates
  EXPECT_TRUE(Must(store_->JobEpisodes(id, 100)).empty());
  ASSERT_NO_FATAL_FAILURE(Run(id));
  EXPECT_TRUE(HasEvent(id, "resumed after episode 3"));
  EXPECT_EQ(Hashes(id), first);
  EXPECT_EQ(Must(SearchSession::LoggedEpisodesNeeded(Must(store_->GetJob(id)).checkpoint)), 8);
}

}  // namespace
}  // namespace acs::server
