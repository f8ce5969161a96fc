// A search session's two-part checkpoint: snapshots of the agent whose size does not grow
// with the episodes, the episode log restored up to the snapshot's count (episodes logged
// after it are ignored and re-run), and the format-1 blobs of older databases.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agents/search_session.h"
#include "tests/agents/small_search.h"
#include "tests/core/test_models.h"

namespace acs {
namespace {

using nlohmann::json;

// SmallSearch with 8 episodes.
SearchSessionOptions EightEpisodes() {
  SearchSessionOptions o = SmallSearch();
  o.episodes = 8;
  return o;
}

std::unique_ptr<SearchSession> NewSession() {
  StatusOr<std::unique_ptr<SearchSession>> s = SearchSession::Create(EightEpisodes());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// Runs s until it holds n episodes.
void RunTo(SearchSession& s, size_t n) {
  ASSERT_TRUE(s.Run(nullptr, [&] { return s.episodes().size() >= n; }).ok());
  ASSERT_EQ(s.episodes().size(), n);
}

std::vector<std::string> Log(const SearchSession& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.episodes().size(); ++i) out.push_back(s.EpisodeJson(static_cast<int>(i)));
  return out;
}

std::vector<std::string> Hashes(const SearchSession& s) {
  std::vector<std::string> out;
  for (const EpisodeRecord& e : s.episodes()) out.push_back(e.policy.Hash());
  return out;
}

TEST(SearchCheckpointTest, ASnapshotHoldsTheAgentAndACountNotTheEpisodes) {
  std::unique_ptr<SearchSession> s = NewSession();
  ASSERT_TRUE(s);
  RunTo(*s, 2);
  const std::string at2 = s->Snapshot();
  RunTo(*s, 8);
  const std::string at8 = s->Snapshot();
  const json j = json::parse(at8);
  EXPECT_EQ(j["format"], 2);
  EXPECT_EQ(j["episodes"], 8);
  EXPECT_EQ(j.size(), 4u) << at8;  // format, agent_name, agent, episodes
  EXPECT_EQ(*SearchSession::LoggedEpisodesNeeded(at8), 8);
  // Six more episodes add less than one episode's record (the random agent's state is its
  // generator and a count).
  EXPECT_LT(at8.size(), at2.size() + Log(*s)[2].size()) << at2 << "\n" << at8;
  EXPECT_EQ(json::parse(Log(*s)[5])["episode"], 5);
}

// A crash after episodes were logged past the last snapshot: they are ignored (the agent's
// state does not cover them) and the search re-runs them as if never interrupted.
TEST(SearchCheckpointTest, RestoreIgnoresEpisodesLoggedAfterTheSnapshot) {
  std::unique_ptr<SearchSession> whole = NewSession(), crashed = NewSession(), resumed = NewSession();
  ASSERT_TRUE(whole && crashed && resumed);
  RunTo(*whole, 8);
  RunTo(*crashed, 3);
  const std::string snapshot = crashed->Snapshot();
  RunTo(*crashed, 5);
  const std::vector<std::string> log = Log(*crashed);

  ASSERT_TRUE(resumed->Restore(snapshot, log).ok());
  EXPECT_EQ(resumed->episodes().size(), 3u);
  RunTo(*resumed, 8);
  EXPECT_EQ(Hashes(*resumed), Hashes(*whole));

  // A log shorter than the snapshot's count, or out of order, is refused.
  EXPECT_EQ(resumed->Restore(snapshot, {log[0], log[1]}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(resumed->Restore(snapshot, {log[0], log[2], log[1]}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(resumed->episodes().size(), 8u);  // a refused restore changes nothing
}

// Checkpoints written before snapshots (format 1: the agent's state and the whole log in
// one blob) still restore, with no log beside them.
TEST(SearchCheckpointTest, AFormatOneCheckpointStillRestores) {
  std::unique_ptr<SearchSession> whole = NewSession(), old = NewSession(), resumed = NewSession();
  ASSERT_TRUE(whole && old && resumed);
  RunTo(*whole, 8);
  RunTo(*old, 3);
  const json snapshot = json::parse(old->Snapshot());
  json v1 = {{"format", 1}, {"agent_name", snapshot["agent_name"]}, {"agent", snapshot["agent"]}};
  v1["episodes"] = json::array();
  for (const std::string& e : Log(*old)) v1["episodes"].push_back(json::parse(e));
  EXPECT_EQ(*SearchSession::LoggedEpisodesNeeded(v1.dump()), 0);
  ASSERT_TRUE(resumed->Restore(v1.dump()).ok());
  EXPECT_EQ(resumed->episodes().size(), 3u);
  RunTo(*resumed, 8);
  EXPECT_EQ(Hashes(*resumed), Hashes(*whole));

  // The layout as stored by earlier builds, verbatim: two dense episodes (over the budget).
  const std::string stored =
      R"({"agent":"{\"agent\":\"random\",\"episodes\":2,\"rng\":12345}","agent_name":"random","episodes":[)"
      R"({"accuracy":0.75,"cost":100.0,"cost_ratio":1.0,"episode":0,"policy":{},"policy_hash":"x","reward":0.75,)"
      R"("seconds":0.5},{"accuracy":0.5,"cost":100.0,"cost_ratio":1.0,"episode":1,"policy":{},"policy_hash":"y",)"
      R"("reward":0.5,"seconds":0.25}],"format":1})";
  ASSERT_TRUE(resumed->Restore(stored).ok());
  ASSERT_EQ(resumed->episodes().size(), 2u);
  EXPECT_DOUBLE_EQ(resumed->episodes()[0].score.accuracy, 0.75);
  EXPECT_EQ(resumed->episodes_over_budget(), 2);
  EXPECT_EQ(resumed->best(), -1);
  RunTo(*resumed, 4);

  for (const std::string bad : {"", "{}", R"({"format":3,"agent_name":"random","agent":"{}","episodes":0})",
                                R"({"format":2,"agent_name":"random","agent":"{}","episodes":-1})",
                                R"({"format":2,"agent_name":"random","agent":"{}","episodes":[]})",
                                R"({"format":"2","agent_name":"random","agent":"{}","episodes":0})"}) {
    EXPECT_EQ(resumed->Restore(bad).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(SearchSession::LoggedEpisodesNeeded(bad).ok()) << bad;
  }
  EXPECT_EQ(resumed->Restore(R"({"format":2,"agent_name":"evo","agent":"{}","episodes":0})").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace acs
