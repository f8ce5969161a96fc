#include "agents/ddpg.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "agents/state_encoder.h"

namespace acs {

using nlohmann::json;

void FillUniform(torch::Tensor t, double bound, Rng& rng) {
  torch::NoGradGuard no_grad;
  torch::Tensor values = torch::empty({t.numel()}, torch::kFloat64);
  double* v = values.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = (2 * rng.Uniform() - 1) * bound;
  t.copy_(values.view(t.sizes()));
}

namespace {

// [state, embedding of the step (with an encoder), action (critic only)] -> hidden ->
// hidden -> out; a sigmoid output for the actor. Initialized as in the DDPG paper
// (Lillicrap et al., 2016): hidden layers uniform in +-1/sqrt(fan_in), the output layer
// in +-3e-3.
class Net : public torch::nn::Module {
 public:
  Net(int64_t in, int64_t hidden, int64_t out, bool sigmoid, std::shared_ptr<StateEncoder> encoder, Rng& rng)
      : sigmoid_(sigmoid), encoder_(std::move(encoder)) {
    if (encoder_) register_module("encoder", encoder_);
    const int64_t width = in + (encoder_ ? encoder_->dim() : 0);
    fc1_ = register_module("fc1", torch::nn::Linear(width, hidden));
    fc2_ = register_module("fc2", torch::nn::Linear(hidden, hidden));
    fc3_ = register_module("fc3", torch::nn::Linear(hidden, out));
    for (auto [layer, bound] : {std::pair{fc1_.get(), 1 / std::sqrt(static_cast<double>(width))},
                                std::pair{fc2_.get(), 1 / std::sqrt(static_cast<double>(hidden))},
                                std::pair{fc3_.get(), 3e-3}}) {
      FillUniform(layer->weight, bound, rng);
      FillUniform(layer->bias, bound, rng);
    }
  }

  // state [B, S] float, steps [B] int64, action [B, A] or undefined.
  torch::Tensor forward(const torch::Tensor& state, const torch::Tensor& steps, const torch::Tensor& action) {
    std::vector<torch::Tensor> parts = {state};
    if (encoder_) parts.push_back(encoder_->forward(steps));
    if (action.defined()) parts.push_back(action);
    torch::Tensor x = torch::relu(fc1_->forward(torch::cat(parts, 1)));
    x = fc3_->forward(torch::relu(fc2_->forward(x)));
    return sigmoid_ ? torch::sigmoid(x) : x;
  }

 private:
  bool sigmoid_;
  std::shared_ptr<StateEncoder> encoder_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
};

void CopyParameters(torch::nn::Module& to, const torch::nn::Module& from, double tau) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> dst = to.parameters(), src = from.parameters();
  for (size_t i = 0; i < dst.size(); ++i) dst[i].mul_(1 - tau).add_(src[i], tau);
}

// A sample of N(mean, sigma^2) truncated to [0, 1], by rejection.
double TruncatedNormal(double mean, double sigma, Rng& rng) {
  mean = std::clamp(mean, 0.0, 1.0);
  if (!(sigma > 0)) return mean;
  for (int i = 0; i < 1000; ++i) {
    double v = mean + sigma * rng.Normal();
    if (v >= 0 && v <= 1) return v;
  }
  return mean;
}

torch::Tensor Row(const std::vector<double>& v, int64_t width) {
  torch::Tensor t = torch::zeros({1, width});
  for (int64_t i = 0; i < width && i < static_cast<int64_t>(v.size()); ++i) t[0][i] = v[i];
  return t;
}

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    for (size_t k = 0; k < 4; ++k) out.push_back(i + k <= in.size() ? kBase64[(v >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

bool Base64Decode(const std::string& in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const char* p = c == '=' ? nullptr : std::strchr(kBase64, c);
      if (c == '=') ++pad;
      else if (!p || c == '\0' || pad) return false;
      v = (v << 6) | (p ? static_cast<uint32_t>(p - kBase64) : 0);
    }
    for (int k = 0; k < 3 - pad; ++k) out->push_back(static_cast<char>((v >> (16 - 8 * k)) & 255));
  }
  return true;
}

}  // namespace

struct DdpgAgent::Nets {
  std::shared_ptr<Net> actor, actor_target, critic, critic_target;
  std::unique_ptr<torch::optim::Adam> actor_optimizer, critic_optimizer;
  // The replay buffer, a ring of `capacity` rows; rows [0, size) are filled.
  torch::Tensor states, steps, actions, rewards, next_states, next_steps, done;
  int64_t size = 0, next = 0;

  std::vector<std::pair<std::string, torch::nn::Module*>> Modules() {
    return {{"actor", actor.get()}, {"actor_target", actor_target.get()}, {"critic", critic.get()},
            {"critic_target", critic_target.get()}};
  }
  std::vector<std::pair<std::string, torch::Tensor*>> Replay() {
    return {{"states", &states}, {"steps", &steps}, {"actions", &actions}, {"rewards", &rewards},
            {"next_states", &next_states}, {"next_steps", &next_steps}, {"done", &done}};
  }
};

DdpgAgent::DdpgAgent(uint64_t seed, DdpgOptions options, EncoderFactory encoder, std::string name)
    : name_(std::move(name)), options_(options), encoder_(std::move(encoder)), seed_(seed), rng_(seed) {}

DdpgAgent::~DdpgAgent() = default;

void DdpgAgent::Build(int state_dim, int action_dim) {
  state_dim_ = state_dim;
  action_dim_ = action_dim;
  auto n = std::make_unique<Nets>();
  auto make = [&](int64_t in, int64_t out, bool sigmoid) {
    return std::make_shared<Net>(in, options_.hidden, out, sigmoid, encoder_ ? encoder_(rng_) : nullptr, rng_);
  };
  n->actor = make(state_dim, action_dim, true);
  n->actor_target = make(state_dim, action_dim, true);
  n->critic = make(state_dim + action_dim, 1, false);
  n->critic_target = make(state_dim + action_dim, 1, false);
  CopyParameters(*n->actor_target, *n->actor, 1.0);
  CopyParameters(*n->critic_target, *n->critic, 1.0);
  n->actor_optimizer = std::make_unique<torch::optim::Adam>(n->actor->parameters(), torch::optim::AdamOptions(options_.actor_lr));
  n->critic_optimizer =
      std::make_unique<torch::optim::Adam>(n->critic->parameters(), torch::optim::AdamOptions(options_.critic_lr));
  const int64_t cap = std::max(1, options_.replay_capacity);
  n->states = torch::zeros({cap, state_dim});
  n->next_states = torch::zeros({cap, state_dim});
  n->actions = torch::zeros({cap, action_dim});
  n->rewards = torch::zeros({cap});
  n->done = torch::zeros({cap});
  n->steps = torch::zeros({cap}, torch::kInt64);
  n->next_steps = torch::zeros({cap}, torch::kInt64);
  nets_ = std::move(n);
}

double DdpgAgent::sigma() const {
  if (episodes_ < options_.warmup_episodes) return 0;
  return options_.init_sigma * std::pow(options_.sigma_decay, episodes_ - options_.warmup_episodes);
}

void DdpgAgent::BeginEpisode(int steps, int action_dim) {
  if (action_dim != action_dim_) nets_.reset();  // a new problem: networks are made on the first Act
  action_dim_ = action_dim;
  step_ = 0;
  pending_.clear();
}

std::vector<double> DdpgAgent::Act(const std::vector<double>& state) {
  if (!nets_ || static_cast<int>(state.size()) != state_dim_) Build(static_cast<int>(state.size()), action_dim_);
  std::vector<double> action(action_dim_);
  if (episodes_ < options_.warmup_episodes) {
    for (double& v : action) v = rng_.Uniform();
  } else {
    std::vector<double> mean = Greedy(state, step_);
    const double s = sigma();
    for (int k = 0; k < action_dim_; ++k) action[k] = TruncatedNormal(mean[k], s, rng_);
  }
  ++step_;
  return action;
}

std::vector<double> DdpgAgent::Greedy(const std::vector<double>& state, int step) const {
  torch::NoGradGuard no_grad;
  torch::Tensor a = nets_->actor->forward(Row(state, state_dim_), torch::full({1}, step, torch::kInt64), {});
  std::vector<double> out(action_dim_);
  for (int k = 0; k < action_dim_; ++k) out[k] = a[0][k].item<double>();
  return out;
}

void DdpgAgent::Observe(const Transition& transition) { pending_.push_back(transition); }

void DdpgAgent::EndEpisode(double reward) {
  // AMC: every transition of the episode gets the episode's reward minus the baseline.
  const double advantage = has_baseline_ ? reward - baseline_ : 0.0;
  baseline_ = has_baseline_ ? options_.baseline_decay * baseline_ + (1 - options_.baseline_decay) * reward : reward;
  has_baseline_ = true;
  if (nets_) {
    Nets& n = *nets_;
    const int64_t cap = n.states.size(0);
    for (size_t t = 0; t < pending_.size(); ++t) {
      const Transition& tr = pending_[t];
      const int64_t row = n.next;
      n.states[row].copy_(Row(tr.state, state_dim_)[0]);
      n.actions[row].copy_(Row(tr.action, action_dim_)[0]);
      n.next_states[row].copy_(Row(tr.next_state, state_dim_)[0]);
      n.rewards[row] = advantage;
      n.done[row] = tr.done ? 1.0 : 0.0;
      n.steps[row] = static_cast<int64_t>(t);
      n.next_steps[row] = static_cast<int64_t>(tr.done ? t : t + 1);
      n.next = (row + 1) % cap;
      n.size = std::min(cap, n.size + 1);
    }
  }
  const int updates = static_cast<int>(pending_.size()) * options_.updates_per_step;
  pending_.clear();
  step_ = 0;
  ++episodes_;
  if (nets_ && episodes_ >= options_.warmup_episodes && nets_->size > 0) {
    for (int i = 0; i < updates; ++i) Update();
  }
}

void DdpgAgent::Update() {
  Nets& n = *nets_;
  const int64_t batch = std::max(1, options_.batch_size);
  torch::Tensor index = torch::empty({batch}, torch::kInt64);
  int64_t* idx = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < batch; ++i) idx[i] = static_cast<int64_t>(rng_.Next() % static_cast<uint64_t>(n.size));
  auto pick = [&](const torch::Tensor& t) { return t.index_select(0, index); };
  torch::Tensor s = pick(n.states), t = pick(n.steps), a = pick(n.actions), r = pick(n.rewards);
  torch::Tensor s2 = pick(n.next_states), t2 = pick(n.next_steps), d = pick(n.done);
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor q2 = n.critic_target->forward(s2, t2, n.actor_target->forward(s2, t2, {})).squeeze(1);
    target = r + options_.discount * (1 - d) * q2;
  }
  torch::Tensor critic_loss = torch::mse_loss(n.critic->forward(s, t, a).squeeze(1), target);
  n.critic_optimizer->zero_grad();
  critic_loss.backward();
  n.critic_optimizer->step();
  torch::Tensor actor_loss = -n.critic->forward(s, t, n.actor->forward(s, t, {})).mean();
  n.actor_optimizer->zero_grad();
  actor_loss.backward();
  n.actor_optimizer->step();
  CopyParameters(*n.actor_target, *n.actor, options_.tau);
  CopyParameters(*n.critic_target, *n.critic, options_.tau);
}

std::string DdpgAgent::Checkpoint() const {
  json j = {{"agent", name_}, {"seed", seed_}, {"rng", rng_.state()}, {"episodes", episodes_}, {"step", step_},
            {"baseline", baseline_}, {"has_baseline", has_baseline_}, {"state_dim", state_dim_},
            {"action_dim", action_dim_}, {"hidden", options_.hidden}, {"pending", json::array()}};
  for (const Transition& t : pending_) {
    j["pending"].push_back({{"state", t.state}, {"action", t.action}, {"next_state", t.next_state}, {"done", t.done}});
  }
  if (nets_) {
    torch::serialize::OutputArchive archive;
    for (auto& [key, module] : nets_->Modules()) {
      torch::serialize::OutputArchive sub;
      module->save(sub);
      archive.write(key, sub);
    }
    torch::serialize::OutputArchive actor_opt, critic_opt;
    nets_->actor_optimizer->save(actor_opt);
    nets_->critic_optimizer->save(critic_opt);
    archive.write("actor_optimizer", actor_opt);
    archive.write("critic_optimizer", critic_opt);
    for (auto& [key, tensor] : nets_->Replay()) archive.write("replay_" + key, *tensor);
    archive.write("replay_size", torch::tensor(nets_->size));
    archive.write("replay_next", torch::tensor(nets_->next));
    std::ostringstream bytes;
    archive.save_to(bytes);
    j["nets"] = Base64Encode(bytes.str());
  }
  return j.dump();
}

Status DdpgAgent::Restore(const std::string& checkpoint) {
  json j = json::parse(checkpoint, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("agent checkpoint is not a JSON object");
  if (j.value("agent", "") != name_) {
    return Status::InvalidArgument("checkpoint is of agent '" + j.value("agent", "") + "', not '" + name_ + "'");
  }
  try {
    if (j.at("hidden").get<int>() != options_.hidden) {
      return Status::InvalidArgument("checkpoint has hidden layers of " + j.at("hidden").dump() + " units, the agent " +
                                     std::to_string(options_.hidden));
    }
    const int state_dim = j.at("state_dim").get<int>(), action_dim = j.at("action_dim").get<int>();
    nets_.reset();
    state_dim_ = state_dim;
    action_dim_ = action_dim;
    if (j.contains("nets")) {
      std::string bytes;
      if (!Base64Decode(j.at("nets").get<std::string>(), &bytes)) {
        return Status::InvalidArgument("agent checkpoint: the networks are not valid base64");
      }
      Build(state_dim, action_dim);
      torch::serialize::InputArchive archive;
      std::istringstream in(bytes);
      archive.load_from(in);
      for (auto& [key, module] : nets_->Modules()) {
        torch::serialize::InputArchive sub;
        archive.read(key, sub);
        module->load(sub);
      }
      torch::serialize::InputArchive actor_opt, critic_opt;
      archive.read("actor_optimizer", actor_opt);
      archive.read("critic_optimizer", critic_opt);
      nets_->actor_optimizer->load(actor_opt);
      nets_->critic_optimizer->load(critic_opt);
      for (auto& [key, tensor] : nets_->Replay()) {
        torch::Tensor t;
        archive.read("replay_" + key, t);
        if (t.sizes() != tensor->sizes() || t.scalar_type() != tensor->scalar_type()) {
          nets_.reset();
          return Status::InvalidArgument("agent checkpoint: replay buffer '" + key + "' does not fit the options");
        }
        *tensor = t;
      }
      torch::Tensor size, next;
      archive.read("replay_size", size);
      archive.read("replay_next", next);
      nets_->size = size.item<int64_t>();
      nets_->next = next.item<int64_t>();
    }
    rng_.set_state(j.at("rng").get<uint64_t>());
    seed_ = j.at("seed").get<uint64_t>();
    episodes_ = j.at("episodes").get<int>();
    step_ = j.at("step").get<int>();
    baseline_ = j.at("baseline").get<double>();
    has_baseline_ = j.at("has_baseline").get<bool>();
    pending_.clear();
    for (const json& t : j.at("pending")) {
      pending_.push_back({t.at("state").get<std::vector<double>>(), t.at("action").get<std::vector<double>>(),
                          t.at("next_state").get<std::vector<double>>(), t.at("done").get<bool>()});
    }
  } catch (const std::exception& e) {
    nets_.reset();
    return Status::InvalidArgument(name_ + " agent checkpoint: " + e.what());
  }
  return Status::Ok();
}

}  // namespace acs
