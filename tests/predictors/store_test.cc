// The SQLite measurement store and the SQLite wrapper's migrations.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/sqlite_db.h"
#include "predictors/predictor.h"
#include "predictors/store.h"
#include "tests/temp_dir.h"

namespace acs::predictors {
namespace {

// A path in a per-process directory removed when the process exits.
std::string TempPath(const std::string& name) {
  static ScopedTempDir dir("acs_store_test_");
  const auto p = std::filesystem::path(dir.path()) / name;
  std::filesystem::remove(p);
  return p.string();
}

KernelRecord Record(int64_t out, double us, const std::string& source) {
  KernelRecord r;
  r.device_class = "x86_64-avx512-test";
  r.spec.in_channels = 16;
  r.spec.out_channels = out;
  r.spec.kernel = {3, 3};
  r.spec.padding = {1, 1};
  r.spec.input = {1, 16, 8, 8};
  r.spec.config.pattern = Pattern::kBlock;
  r.spec.config.block = 4;
  r.spec.config.sparsity = 0.5;
  r.median_us = us;
  r.iqr_us = us / 10;
  r.repeats = 12;
  r.source = source;
  r.record_json = R"({"note": "test"})";
  return r;
}

TEST(StoreTest, KernelsModelsPredictorsAndDevicesSurviveReopening) {
  const std::string path = TempPath("store.db");
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<KernelRecord> recs = {Record(32, 10.5, "initial"), Record(64, 20.25, "heldout")};
    recs[0].min_us = 9.75;  // the second one has no minimum: labelled by its median
    ASSERT_TRUE((*store)->AddKernels(recs).ok());
    EXPECT_GT(recs[1].id, recs[0].id);
    ModelRecord m;
    m.device_class = "x86_64-avx512-test";
    m.model = "resnet20";
    m.policy_hash = "abc";
    m.policy_json = "{}";
    m.shape.threads = 2;
    m.shape.layers = {recs[0].spec};
    m.shape.other_ops = 5;
    m.shape.other_bytes = 1000;
    m.median_us = 123;
    m.min_us = 110;
    ASSERT_TRUE((*store)->AddModel(m).ok());
    PredictorRecord p;
    p.device_class = "x86_64-avx512-test";
    p.name = "xgboost";
    p.blob = std::string("\0binary\xff", 8);
    p.metrics_json = "{}";
    EXPECT_EQ(*(*store)->AddPredictor(p), 1);
    EXPECT_EQ(*(*store)->AddPredictor(p), 2);
    ASSERT_TRUE((*store)->PutDevice("x86_64-avx512-test", R"({"peak": 1})").ok());
    ASSERT_TRUE((*store)->PutDevice("x86_64-avx512-test", R"({"peak": 2})").ok());
  }
  auto store = OpenSqliteStore(path);  // migrations are not re-applied
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto kernels = (*store)->Kernels("x86_64-avx512-test");
  ASSERT_TRUE(kernels.ok());
  ASSERT_EQ(kernels->size(), 2u);
  EXPECT_EQ((*kernels)[1].spec.Key(), Record(64, 0, "").spec.Key());
  EXPECT_DOUBLE_EQ((*kernels)[1].median_us, 20.25);
  EXPECT_DOUBLE_EQ((*kernels)[0].min_us, 9.75);
  EXPECT_DOUBLE_EQ(LabelUs((*kernels)[0]), 9.75);
  EXPECT_DOUBLE_EQ(LabelUs((*kernels)[1]), 20.25);
  EXPECT_EQ(RoleOf((*kernels)[1]), KernelRole::kHeldOut);
  ASSERT_EQ(Samples(*kernels, KernelRole::kTraining).size(), 1u);
  EXPECT_DOUBLE_EQ(Samples(*kernels, KernelRole::kTraining)[0].latency_us, 9.75);
  auto models = (*store)->Models("x86_64-avx512-test");
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].shape.threads, 2);
  EXPECT_EQ((*models)[0].shape.layers.size(), 1u);
  EXPECT_DOUBLE_EQ((*models)[0].shape.other_bytes, 1000);
  EXPECT_DOUBLE_EQ(LabelUs((*models)[0]), 110);
  auto latest = (*store)->LatestPredictor("x86_64-avx512-test", "xgboost");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->version, 2);
  EXPECT_EQ((*latest)->blob, std::string("\0binary\xff", 8));
  EXPECT_FALSE((*store)->LatestPredictor("other", "xgboost")->has_value());
  EXPECT_EQ(**(*store)->Device("x86_64-avx512-test"), R"({"peak": 2})");
  EXPECT_EQ((*(*store)->DeviceClasses()).size(), 1u);
  EXPECT_TRUE((*store)->Kernels("other")->empty());
}

ModelRecord Model(const std::string& device_class, const std::string& record_json) {
  ModelRecord m;
  m.device_class = device_class;
  m.model = "resnet20";
  m.policy_hash = "abc";
  m.policy_json = "{}";
  m.shape.layers = {Record(32, 1, "initial").spec};
  m.median_us = 100;
  m.record_json = record_json;
  return m;
}

// Leaves the store at `path` as a build of measurements schema `version` (2 or 3) left it:
// without the lookup columns (and their indexes) later migrations add.
void WriteAsSchema(const std::string& path, int version) {
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  std::string sql = "DROP INDEX model_measurements_by_model; ALTER TABLE model_measurements DROP COLUMN model_sha256; ";
  if (version < 3) sql += "DROP INDEX model_measurements_by_task; ALTER TABLE model_measurements DROP COLUMN task; ";
  sql += "UPDATE schema_migrations SET version = " + std::to_string(version) + " WHERE component = 'measurements'";
  ASSERT_TRUE((*db)->Exec(sql).ok());
}

TEST(StoreTest, AModelRecordIsFoundByItsTaskAlsoInADatabaseWrittenBeforeTheLookup) {
  const std::string path = TempPath("by_task.db"), x = "x86_64-avx512-test";
  const std::string of_a = R"({"runtime": {}, "job": {"task": "task-a"}})";
  int64_t first_a = 0, b = 0;
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<ModelRecord> models = {Model(x, "not json"),
                                       Model(x, R"({"job": {"task": 7}})"),
                                       Model(x, of_a),
                                       Model("other-class", R"({"job": {"task": "task-b"}})"),
                                       Model(x, of_a),
                                       Model(x, R"({"job": {"task": "task-b"}})"),
                                       Model(x, R"({"job": "task-c"})")};
    for (ModelRecord& m : models) ASSERT_TRUE((*store)->AddModel(m).ok());
    first_a = models[2].id;
    b = models[5].id;
  }
  for (const bool migrated : {false, true}) {
    SCOPED_TRACE(migrated ? "migrated" : "as written");
    // The same rows as a build before the lookup left them: no task column, schema version 2.
    if (migrated) WriteAsSchema(path, 2);
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    StatusOr<std::optional<ModelRecord>> a = (*store)->ModelOfTask(x, "task-a");
    ASSERT_TRUE(a.ok() && a->has_value()) << a.status().ToString();
    EXPECT_EQ((*a)->id, first_a);  // the first of two
    EXPECT_EQ((*a)->record_json, of_a);
    EXPECT_EQ((*a)->shape.layers.size(), 1u);
    auto id_of = [&](const std::string& device_class, const std::string& task) -> int64_t {
      StatusOr<std::optional<ModelRecord>> r = (*store)->ModelOfTask(device_class, task);
      return r.ok() && r->has_value() ? (*r)->id : -1;
    };
    EXPECT_EQ(id_of(x, "task-b"), b);  // not the other class's
    EXPECT_GT(id_of("other-class", "task-b"), first_a);
    for (const char* none : {"task-c", "7", "", "task-nope"}) {
      StatusOr<std::optional<ModelRecord>> r = (*store)->ModelOfTask(x, none);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_FALSE(r->has_value()) << none;
    }
    EXPECT_FALSE((*(*store)->ModelOfTask("no-class", "task-a")).has_value());
    EXPECT_EQ((*store)->Models(x)->size(), 6u);
  }
}

TEST(StoreTest, AModelsRecordsAreFoundByItsSha256AlsoInADatabaseWrittenBeforeTheLookup) {
  const std::string path = TempPath("by_model.db"), x = "x86_64-avx512-test";
  std::vector<int64_t> of_a, of_b, other_class_of_a;
  {
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const std::vector<std::pair<std::string, std::string>> rows = {
        {x, R"({"job": {"model_sha256": "sha-a", "task": "t1"}})"},
        {x, "not json"},
        {x, R"({"job": {"model_sha256": 7}})"},
        {x, R"({"job": {"model_sha256": ""}})"},
        {x, R"({"job": "sha-a"})"},
        {"other-class", R"({"job": {"model_sha256": "sha-a"}})"},
        {x, R"({"job": {"model_sha256": "sha-b"}})"},
        {x, R"({"runtime": {}, "job": {"model_sha256": "sha-a", "task": "t2"}})"},
    };
    for (const auto& [device_class, record_json] : rows) {
      ModelRecord m = Model(device_class, record_json);
      ASSERT_TRUE((*store)->AddModel(m).ok());
      if (record_json.find(R"("model_sha256": "sha-a")") != std::string::npos) {
        (device_class == x ? of_a : other_class_of_a).push_back(m.id);
      }
      if (record_json.find(R"("model_sha256": "sha-b")") != std::string::npos) of_b.push_back(m.id);
    }
  }
  ASSERT_EQ(of_a.size(), 2u);
  for (const int before : {0, 3, 2}) {
    SCOPED_TRACE(before ? "migrated from schema " + std::to_string(before) : "as written");
    if (before) WriteAsSchema(path, before);
    auto store = OpenSqliteStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto ids_of = [&](const std::string& device_class, const std::string& sha) {
      StatusOr<std::vector<ModelRecord>> r = (*store)->ModelsOfModel(device_class, sha);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      std::vector<int64_t> ids;
      for (const ModelRecord& m : r.ok() ? *r : std::vector<ModelRecord>()) ids.push_back(m.id);
      return ids;
    };
    EXPECT_EQ(ids_of(x, "sha-a"), of_a);  // in the order stored, not the other class's
    EXPECT_EQ(ids_of(x, "sha-b"), of_b);
    EXPECT_EQ(ids_of("other-class", "sha-a"), other_class_of_a);
    for (const char* none : {"7", "", "sha-nope"}) EXPECT_TRUE(ids_of(x, none).empty()) << none;
    EXPECT_TRUE(ids_of("no-class", "sha-a").empty());
    const std::vector<ModelRecord> a = (*store)->ModelsOfModel(x, "sha-a").value();
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[1].record_json, R"({"runtime": {}, "job": {"model_sha256": "sha-a", "task": "t2"}})");
    EXPECT_EQ(a[1].shape.layers.size(), 1u);
    EXPECT_EQ((*store)->ModelOfTask(x, "t2").value().value_or(ModelRecord()).id, of_a[1]);  // still found
    EXPECT_EQ((*store)->Models(x)->size(), 7u);
  }
}

TEST(StoreTest, NewerSchemaAndUnopenablePathsAreClearErrors) {
  const std::string path = TempPath("newer.db");
  {
    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Migrate("measurements", {"CREATE TABLE a (x)", "CREATE TABLE b (x)", "CREATE TABLE c (x)",
                                               "CREATE TABLE d (x)", "CREATE TABLE e (x)"})
                    .ok());
  }
  const Status s = OpenSqliteStore(path).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.message();
  EXPECT_EQ(OpenSqliteStore("/nonexistent-dir/x/store.db").status().code(), StatusCode::kUnavailable);
}

TEST(StoreTest, AFailingMigrationLeavesTheDatabaseAsItWas) {
  const std::string path = TempPath("failing.db");
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Migrate("c", {"CREATE TABLE a (x)"}).ok());
  const Status s = (*db)->Migrate("c", {"CREATE TABLE a (x)", "CREATE TABLE b (x); THIS IS NOT SQL"});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("migration 2"), std::string::npos) << s.message();
  // Table b was rolled back with the failed migration; version 2 can run once fixed.
  EXPECT_TRUE((*db)->Migrate("c", {"CREATE TABLE a (x)", "CREATE TABLE b (x)"}).ok());
}

TEST(PredictorTest, TrainedPredictorRoundTripsThroughItsBlob) {
  std::vector<KernelRecord> recs;
  for (int i = 1; i <= 40; ++i) recs.push_back(Record(4 * i, 5.0 + i, i % 5 == 0 ? "heldout" : "initial"));
  std::vector<ModelRecord> models;
  for (int i = 0; i < 4; ++i) {
    ModelRecord m;
    m.model = i < 2 ? "a" : "b";
    m.policy_hash = "policy" + std::to_string(i);
    m.shape.layers = {recs[i].spec, recs[i + 1].spec};
    m.shape.other_ops = i;
    m.median_us = 40 + i;
    models.push_back(m);
  }
  XgbOptions o;
  o.rounds = 20;
  StatusOr<TrainedPredictor> p = TrainPredictor(recs, models, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  StatusOr<std::string> blob = SavePredictor(*p);
  ASSERT_TRUE(blob.ok());
  StatusOr<TrainedPredictor> back = LoadPredictor(*blob);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_DOUBLE_EQ(*back->PredictModel(models[2].shape), *p->PredictModel(models[2].shape));
  EXPECT_EQ(LoadPredictor("{}").status().code(), StatusCode::kInvalidArgument);

  EvalOptions eo;
  eo.xgb = o;
  eo.roofline = {{1, 50.0, 20.0}};
  StatusOr<EvalReport> report = EvaluatePredictors(recs, models, eo);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->heldout_kernels, 8);
  EXPECT_EQ(report->models, 2);
  int whole = 0;
  for (const EvalRow& r : report->rows) whole += r.scope == "whole model";
  EXPECT_EQ(whole, 4);  // xgboost, flops, roofline, lookup
  EXPECT_EQ(report->heldout_predictions.size(), 8u);
  EXPECT_EQ(report->points.size(), 40u);  // all of them, below the cap
  for (const EvalRow& r : report->rows) EXPECT_NE(r.model, "repeat");  // nothing measured twice
}

TEST(PredictorTest, RepeatRowsGiveTheNoiseFloorAndStayOutOfTraining) {
  std::vector<KernelRecord> recs;
  for (int i = 1; i <= 30; ++i) recs.push_back(Record(4 * i, 5.0 + i, "initial"));
  // Held-out kernels measured twice: the second 4% slower for two of them, 30% for two.
  const double slower[] = {1.04, 1.04, 1.3, 1.3};
  for (int i = 0; i < 4; ++i) {
    recs.push_back(Record(200 + 4 * i, 20.0, kHeldOutSource));
    recs.push_back(Record(200 + 4 * i, 20.0 * slower[i], kRepeatSource));
  }
  // The same held-out shape at another thread count is a different kernel: no pair.
  recs.push_back(Record(200, 99.0, kRepeatSource));
  recs.back().spec.threads = 2;
  EXPECT_EQ(RoleOf(recs[30]), KernelRole::kHeldOut);
  EXPECT_EQ(RoleOf(recs[31]), KernelRole::kRepeat);
  EXPECT_EQ(RoleOf(recs[0]), KernelRole::kTraining);
  EXPECT_EQ(Samples(recs, KernelRole::kTraining).size(), 30u);
  EXPECT_EQ(Samples(recs, KernelRole::kRepeat).size(), 5u);

  std::vector<ModelRecord> models;
  for (double us : {100.0, 108.0, 150.0}) {  // one configuration measured three times
    ModelRecord m;
    m.model = "a";
    m.policy_hash = "p";
    m.shape.layers = {recs[0].spec};
    m.median_us = us;
    models.push_back(m);
  }
  EvalOptions eo;
  eo.xgb.rounds = 10;
  StatusOr<EvalReport> report = EvaluatePredictors(recs, models, eo);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->repeated_kernels, 4);  // the 2-thread one has no first measurement
  const EvalRow* kernels = nullptr;
  const EvalRow* whole = nullptr;
  for (const EvalRow& r : report->rows) {
    if (r.model == "repeat" && r.scope == "kernels") kernels = &r;
    if (r.model == "repeat" && r.scope == "whole model") whole = &r;
  }
  ASSERT_NE(kernels, nullptr);
  EXPECT_EQ(kernels->metrics.count, 4);
  EXPECT_DOUBLE_EQ(kernels->metrics.within5, 0.5);
  EXPECT_DOUBLE_EQ(kernels->metrics.within10, 0.5);
  ASSERT_NE(whole, nullptr);
  EXPECT_EQ(whole->metrics.count, 2);  // 108 and 150 against the first 100
  EXPECT_DOUBLE_EQ(whole->metrics.within10, 0.5);

  // The same agreement travels with a trained predictor, and half within 10% is noisy.
  const AccuracyMetrics agreement = RepeatAgreement(recs);
  EXPECT_EQ(agreement.count, 4);
  EXPECT_DOUBLE_EQ(agreement.within10, 0.5);
  StatusOr<TrainedRecord> trained = TrainForStore("x86_64-avx512-test", recs, {}, nlohmann::json::object(), eo.xgb);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  const nlohmann::json metrics = nlohmann::json::parse(trained->record.metrics_json);
  EXPECT_EQ(metrics["repeat_kernels"]["count"], 4);
  EXPECT_DOUBLE_EQ(metrics["repeat_kernels"]["within10"].get<double>(), 0.5);
  EXPECT_NE(DescribeRepeatAgreement(4, 0.5).find("noisy"), std::string::npos);
  EXPECT_EQ(DescribeRepeatAgreement(4, 0.9).find("noisy"), std::string::npos);
}

TEST(PredictorTest, EvaluationCarriesChartPointsHeldOutFirstAndCapped) {
  std::vector<KernelRecord> recs;
  const size_t total = kMaxEvalPoints + 100;  // 10% held out
  for (size_t i = 1; i <= total; ++i) {
    recs.push_back(Record(4 + i % 200, 5.0 + 0.01 * i, i % 10 == 0 ? kHeldOutSource : "initial"));
    if (i % 3 == 0) {  // a linear layer
      recs.back().spec.op = "linear";
      recs.back().spec.input = {1, 16};
      recs.back().spec.kernel = {1, 1};
      recs.back().spec.padding = {0, 0};
    }
  }
  recs.push_back(Record(8, 777.0, kRepeatSource));  // repeats are not points
  EvalOptions eo;
  eo.xgb.rounds = 5;
  StatusOr<EvalReport> report = EvaluatePredictors(recs, {}, eo);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::vector<EvalPoint>& points = report->points;
  ASSERT_EQ(points.size(), kMaxEvalPoints);
  const size_t heldout = total / 10;
  ASSERT_EQ(report->heldout_predictions.size(), heldout);
  std::set<std::string> kinds;
  for (size_t i = 0; i < points.size(); ++i) {
    kinds.insert(points[i].kind);
    EXPECT_GT(points[i].flops, 0) << i;
    EXPECT_GT(points[i].measured_us, 0) << i;
    EXPECT_NE(points[i].measured_us, 777.0) << i;
    EXPECT_EQ(points[i].held_out, i < heldout) << i;
    if (i < heldout) {  // every held-out kernel, with the evaluation's XGBoost prediction
      EXPECT_DOUBLE_EQ(points[i].measured_us, report->heldout_predictions[i].measured_us);
      EXPECT_DOUBLE_EQ(points[i].predicted_us, report->heldout_predictions[i].predicted_us);
      EXPECT_GT(points[i].predicted_us, 0) << i;
    } else {
      EXPECT_EQ(points[i].predicted_us, 0) << i;
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"conv2d", "linear"}));
  // Training kernels evenly spaced over all of them (labels grow with the store order).
  const std::vector<KernelSample> train = Samples(recs, KernelRole::kTraining);
  EXPECT_EQ(points[heldout].measured_us, train.front().latency_us);
  EXPECT_GE(points.back().measured_us, train[train.size() - 2].latency_us);

  StatusOr<EvalReport> again = EvaluatePredictors(recs, {}, eo);  // the same points again
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->points.size(), points.size());
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(again->points[i].measured_us, points[i].measured_us) << i;
}

}  // namespace
}  // namespace acs::predictors
