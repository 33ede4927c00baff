#include "server/peer_faults.h"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <thread>
#include <utility>

namespace strata::server {

namespace {

std::vector<std::string_view> SplitRules(std::string_view spec) {
  std::vector<std::string_view> parts;
  while (!spec.empty()) {
    const size_t semi = spec.find(';');
    std::string_view part = spec.substr(0, semi);
    if (!part.empty()) parts.push_back(part);
    if (semi == std::string_view::npos) break;
    spec.remove_prefix(semi + 1);
  }
  return parts;
}

bool ParseNumber(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= 0;
}

}  // namespace

PeerFaults::PeerFaults(std::vector<Rule> rules, std::map<std::string, std::string> routes,
                       Note note, uint64_t seed)
    : routes_(std::move(routes)), note_(std::move(note)), rules_(std::move(rules)), random_(seed) {}

std::string PeerFaults::Route(const std::string& address) const {
  auto it = routes_.find(address);
  return it == routes_.end() ? address : it->second;
}

Result<std::unique_ptr<PeerFaults>> PeerFaults::Parse(std::string_view spec, Note note,
                                                      uint64_t seed) {
  static constexpr std::pair<std::string_view, Action> kActions[] = {
      {"crash-after", Action::kCrashAfter}, {"hold", Action::kHold},     {"delay", Action::kDelay},
      {"duplicate", Action::kDuplicate},    {"jitter", Action::kJitter},
  };
  std::vector<Rule> rules;
  std::map<std::string, std::string> routes;
  for (std::string_view text : SplitRules(spec)) {
    auto refuse = [&](std::string_view why) {
      return Status::InvalidArgument("STRATA_PEER_FAULTS: cannot read '" + std::string(text) +
                                     "': " + std::string(why));
    };
    if (constexpr std::string_view kRoute = "route="; text.substr(0, kRoute.size()) == kRoute) {
      const std::string_view route = text.substr(kRoute.size());
      const size_t arrow = route.find('>');
      if (arrow == std::string_view::npos || arrow == 0 || arrow + 1 == route.size() ||
          route.substr(0, arrow).find(':') == std::string_view::npos ||
          route.substr(arrow + 1).find(':') == std::string_view::npos) {
        return refuse("expected route=HOST:PORT>HOST:PORT");
      }
      routes[std::string(route.substr(0, arrow))] = std::string(route.substr(arrow + 1));
      continue;
    }
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos) return refuse("expected ACTION=KIND[@PEER][:ARG]");
    Rule rule{};
    bool known = false;
    for (const auto& [name, action] : kActions) {
      if (text.substr(0, eq) == name) {
        rule.action = action;
        known = true;
      }
    }
    if (!known) {
      return refuse("unknown action (crash-after, hold, delay, duplicate, jitter, route)");
    }
    std::string_view rest = text.substr(eq + 1);
    const size_t colon = rest.find(':');
    std::string_view arg;
    if (colon != std::string_view::npos) {
      arg = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    const size_t at = rest.find('@');
    if (at != std::string_view::npos) {
      rule.peer = std::string(rest.substr(at + 1));
      rest = rest.substr(0, at);
      if (rule.peer.empty()) return refuse("empty peer after '@'");
    }
    if (rest.empty()) return refuse("no message kind");
    rule.kind = std::string(rest);
    switch (rule.action) {
      case Action::kCrashAfter:
        rule.number = 1;
        if (!arg.empty() && (!ParseNumber(arg, &rule.number) || rule.number < 1)) {
          return refuse("the count must be a number from 1");
        }
        break;
      case Action::kHold:
        if (arg.empty()) return refuse("hold needs the file that releases it");
        rule.file = std::string(arg);
        break;
      case Action::kDuplicate:
        if (!ParseNumber(arg, &rule.number) || rule.number > 100) {
          return refuse("the share must be a percentage from 0 to 100");
        }
        break;
      case Action::kDelay:
      case Action::kJitter:
        if (!ParseNumber(arg, &rule.number) || rule.number > 60'000) {
          return refuse("the delay must be milliseconds from 0 to 60000");
        }
        break;
    }
    rules.push_back(std::move(rule));
  }
  return std::unique_ptr<PeerFaults>(
      new PeerFaults(std::move(rules), std::move(routes), std::move(note), seed));
}

std::string PeerFaults::KindOf(const peerpb::Message& message) {
  if (message.has_record_call()) {
    switch (message.record_call().op()) {
      case peerpb::RECORD_COMMIT:
        return "record_commit";
      case peerpb::RECORD_ABORT:
        return "record_abort";
      case peerpb::RECORD_PUSH:
        return "record_push";
      case peerpb::RECORD_HEARTBEAT:
        return "record_heartbeat";
      case peerpb::RECORD_FORGET:
        return "record_forget";
      default:
        return "record_call";
    }
  }
  const auto* field = peerpb::Message::descriptor()->FindFieldByNumber(message.body_case());
  return field != nullptr ? field->name() : "empty";
}

bool PeerFaults::Matches(const Rule& rule, std::string_view peer, std::string_view kind) {
  return (rule.kind == "*" || rule.kind == kind) && (rule.peer.empty() || rule.peer == peer);
}

PeerFaultPlan PeerFaults::Plan(std::string_view peer, const peerpb::Message& message) {
  const std::string kind = KindOf(message);
  PeerFaultPlan plan;
  std::string told;
  {
    MutexLock lock(mu_);
    for (Rule& rule : rules_) {
      if (!Matches(rule, peer, kind)) continue;
      switch (rule.action) {
        case Action::kCrashAfter:
          if (++rule.matched == static_cast<uint64_t>(rule.number)) plan.crash_after = true;
          break;
        case Action::kHold:
          // The first rule whose file is still missing; one whose file
          // exists is spent (so rules with their own files hold in turn).
          if (plan.hold_until.empty() && ::access(rule.file.c_str(), F_OK) != 0) {
            plan.hold_until = rule.file;
            told =
                "holding " + kind + " to " + std::string(peer) + " until " + rule.file + " exists";
          }
          break;
        case Action::kDelay:
          plan.delay += std::chrono::milliseconds(rule.number);
          break;
        case Action::kJitter:
          plan.delay += std::chrono::milliseconds(random_() % (rule.number + 1));
          break;
        case Action::kDuplicate:
          if (static_cast<int64_t>(random_() % 100) < rule.number) {
            plan.copies.push_back(std::chrono::milliseconds(1 + random_() % 20));
          }
          break;
      }
    }
  }
  if (!told.empty() && note_) note_(told);
  return plan;
}

void PeerFaults::CrashAfterWrite(std::string_view peer, std::string_view kind) {
  frozen_.store(true);
  if (note_) {
    note_("killing this process: " + std::string(kind) + " went to " + std::string(peer));
  }
  // Time for gRPC to put what was written on the wire; nothing else leaves
  // (every link waits while frozen).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(::getpid(), SIGKILL);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace strata::server
