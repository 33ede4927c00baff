#include "cluster/low_water_mark.h"

#include <algorithm>

namespace strata::cluster {

void LowWaterMark::Report(std::string_view node, Timestamp oldest_snapshot) {
  if (std::find(others_.begin(), others_.end(), node) == others_.end()) return;
  reported_[std::string(node)] = oldest_snapshot;
}

void LowWaterMark::AddNode(const std::string& node) {
  if (!node.empty() && std::find(others_.begin(), others_.end(), node) == others_.end()) {
    others_.push_back(node);
  }
}

void LowWaterMark::RemoveNode(std::string_view node) {
  std::erase_if(others_, [node](const std::string& n) { return n == node; });
  if (auto it = reported_.find(std::string(node)); it != reported_.end()) reported_.erase(it);
}

std::optional<Timestamp> LowWaterMark::Mark(Timestamp own) const {
  Timestamp mark = own;
  for (const std::string& node : others_) {
    auto it = reported_.find(node);
    if (it == reported_.end()) return std::nullopt;  // not heard from yet
    mark = std::min(mark, it->second);
  }
  return mark;
}

std::string LowWaterMark::Holder(Timestamp mark, const std::string& self, bool self_holds) const {
  if (self_holds) return self;
  std::optional<std::string> holder;
  for (const auto& [node, snapshot] : reported_) {
    if (snapshot == mark && (!holder || node < *holder)) holder = node;
  }
  return holder.value_or(self);
}

}  // namespace strata::cluster
