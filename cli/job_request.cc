// The job request of `acs submit` and `acs sweep` from their flags.
#include "cli/job_request.h"

#include "cli/job_transfers.h"
#include "core/data_split.h"
#include "core/flags.h"
#include "core/preprocess.h"
#include "proto/request_json.h"

namespace acs::cli {
namespace {

StatusOr<int64_t> ParsePositive(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0) return static_cast<int64_t>(v);
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(flag + " expects positive integers, got '" + text + "'");
}

StatusOr<acs::v1::SearchSpace> ParseSpace(const Flags& f) {
  acs::v1::SearchSpace space;
  for (const std::string& p : SplitList(f.Get("patterns"))) space.add_patterns(p);
  for (const std::string& p : SplitList(f.Get("precisions"))) space.add_precisions(p);
  for (const std::string& s : SplitList(f.Get("skip"))) space.add_skip_layers(s);
  for (const std::string& b : SplitList(f.Get("block-sizes"))) {
    ACS_ASSIGN_OR_RETURN(int64_t size, ParsePositive("--block-sizes", b));
    space.add_block_sizes(static_cast<int32_t>(size));
  }
  ACS_ASSIGN_OR_RETURN(double max_sparsity, f.GetDouble("max-sparsity", 0));
  if (max_sparsity < 0 || max_sparsity >= 1) return Status::InvalidArgument("--max-sparsity must be in [0, 1)");
  space.set_max_sparsity(max_sparsity);
  return space;
}

// Every field of the request but the uploaded blobs' sha256.
StatusOr<acs::v1::SubmitJobRequest> ParseRequest(const Flags& f) {
  acs::v1::SubmitJobRequest req;
  ACS_ASSIGN_OR_RETURN(std::string input, f.Required("input"));
  ACS_ASSIGN_OR_RETURN(Shape shape, ParseShape(input));
  for (int64_t d : shape) req.add_input_shape(d);
  ACS_ASSIGN_OR_RETURN(BudgetSpec budget, ParseBudget(f.Get("budget", "latency=0.5x")));
  req.mutable_budget()->set_kind(budget.kind);
  req.mutable_budget()->set_ratio(budget.ratio);
  ACS_ASSIGN_OR_RETURN(*req.mutable_space(), ParseSpace(f));
  req.set_device_class(f.Get("device-class"));
  req.set_agent(f.Get("agent", "amc"));
  ACS_ASSIGN_OR_RETURN(int64_t episodes, f.GetInt("episodes", 0));
  ACS_ASSIGN_OR_RETURN(int64_t seed, f.GetInt("seed", 1));
  ACS_ASSIGN_OR_RETURN(int64_t threads, f.GetInt("threads", 1));
  ACS_ASSIGN_OR_RETURN(int64_t top_k, f.GetInt("top-k", 0));
  ACS_ASSIGN_OR_RETURN(int64_t time_limit, f.GetInt("time-limit", 0));
  if (episodes < 0 || seed < 0 || threads < 1 || top_k < 0 || time_limit < 0) {
    return Status::InvalidArgument("--episodes, --seed, --top-k and --time-limit must be >= 0, --threads >= 1");
  }
  req.set_time_limit_seconds(time_limit);
  req.set_episodes(static_cast<int32_t>(episodes));
  req.set_seed(static_cast<uint64_t>(seed));
  req.set_threads(static_cast<int32_t>(threads));
  req.set_top_k(static_cast<int32_t>(top_k));
  req.set_fine_tune(f.Has("fine-tune"));
  if (f.Has("preprocess")) {
    ACS_ASSIGN_OR_RETURN(PreprocessSpec spec, PreprocessSpec::Parse(f.Get("preprocess")));
    AddPreprocessSteps(spec.ToJson(), req.mutable_preprocess());
  }
  if (f.Has("split")) {
    ACS_ASSIGN_OR_RETURN(DataSplit split, DataSplit::Parse(f.Get("split")));
    SetDataSplit(split.ToJson(), req.mutable_split());
  }
  return req;
}

}  // namespace

const char kJobOptionsHelp[] =
    "  --input SHAPE        model input shape, e.g. 1x3x32x32 (required)\n"
    "  --data PATH|name:N   a dataset file to upload (IDX, CIFAR-10 binary, torch.save'd\n"
    "                       (images, labels)), an image folder (ROOT/CLASS/*.jpg|png, sent\n"
    "                       as a tar archive of its images), or name:NAME for one the\n"
    "                       server knows, e.g. name:fashion-mnist (required)\n"
    "  --device-class ID    the device class to optimize latency for (see 'acs devices')\n"
    "  --agent NAME         amc, agmc, random, evo or uniform (default amc)\n"
    "  --episodes N         search episodes (default: the server's)\n"
    "  --seed S             random seed (default 1)\n"
    "  --threads T          threads the latency is measured at (default 1)\n"
    "  --top-k K            best policies verified on a worker (default: the server's, 3)\n"
    "  --fine-tune          fine-tune the exported model on the training split (labelled data)\n"
    "  --time-limit SECONDS wall-clock seconds the job may run (not counting its time queued);\n"
    "                       past it the server ends it FAILED (default 0: the server's limit,\n"
    "                       which also caps a larger one)\n"
    "  --preprocess SPEC    the model's preprocessing: a JSON list of steps or a file holding\n"
    "                       one (docs/data.md); it must make the input shape. Default: images\n"
    "                       scaled to [0, 1], channel-repeated and resized to the input\n"
    "  --split PARTS        which samples calibrate, validate and fine-tune, each a count or\n"
    "                       a share, e.g. calibration=256,validation=10%,fine_tune=0.5,\n"
    "                       shuffle_seed=7 (default: 256, 500, 5000 in the data's order;\n"
    "                       image folders shuffled by seed 1)\n"
    "  --test-data PATH|name:N  a labelled test set (forms as --data; name:NAME of an IDX\n"
    "                       directory takes its t10k files): the job reports the dense and\n"
    "                       the downloaded model's accuracy on it\n"
    "search space (default: the server's):\n"
    "  --patterns LIST      channel, block, unstructured, nm\n"
    "  --block-sizes LIST   e.g. 4,8,16\n"
    "  --precisions LIST    fp32, bf16, int8, int4w\n"
    "  --max-sparsity S     in [0, 1)\n"
    "  --skip LAYERS        layers left dense\n";

StatusOr<acs::v1::SubmitJobRequest> UploadedRequest(const Remote& r) {
  const Flags& f = r.flags;
  ACS_ASSIGN_OR_RETURN(acs::v1::SubmitJobRequest req, ParseRequest(f));
  ACS_ASSIGN_OR_RETURN(std::string data, f.Required("data"));
  ACS_RETURN_IF_ERROR(CheckDataFlag("--data", data));
  const std::string test = f.Get("test-data");
  if (!test.empty()) ACS_RETURN_IF_ERROR(CheckDataFlag("--test-data", test));
  ACS_ASSIGN_OR_RETURN(acs::v1::UploadReply model, Upload(r, f.positional[0], false));
  req.set_model_sha256(model.sha256());
  ACS_RETURN_IF_ERROR(ResolveData(r, data, req.mutable_dataset_name(), req.mutable_dataset_sha256()));
  if (!test.empty()) {
    ACS_RETURN_IF_ERROR(ResolveData(r, test, req.mutable_test_dataset_name(), req.mutable_test_dataset_sha256()));
  }
  return req;
}

}  // namespace acs::cli
