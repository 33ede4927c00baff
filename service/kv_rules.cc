#include "service/kv_rules.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <utility>

#include "service/stored_value.h"

namespace strata::service {
namespace {

bool CompareKv(const Compare& c, const KeyValue& kv) {
  int result = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case CompareTarget::kValue:
      result = kv.value.compare(c.value);
      result = result < 0 ? -1 : (result > 0 ? 1 : 0);
      break;
    case CompareTarget::kCreate:
      result = cmp(kv.create_revision, c.number);
      break;
    case CompareTarget::kMod:
      result = cmp(kv.mod_revision, c.number);
      break;
    case CompareTarget::kVersion:
      result = cmp(kv.version, c.number);
      break;
    case CompareTarget::kLease:
      result = cmp(kv.lease, c.number);
      break;
  }
  switch (c.result) {
    case CompareResult::kEqual:
      return result == 0;
    case CompareResult::kNotEqual:
      return result != 0;
    case CompareResult::kGreater:
      return result > 0;
    case CompareResult::kLess:
      return result < 0;
  }
  return true;
}

// Which branch each Txn (and each nested Txn of the branch taken) takes:
// all compares are evaluated against the state before the Txn, as etcd does.
struct TxnPath {
  bool succeeded = false;
  std::vector<TxnPath> nested;  // one per nested Txn op of the branch taken, in order
};

const std::vector<RequestOp>& Branch(const TxnRequest& t, bool succeeded) {
  return succeeded ? t.success : t.failure;
}

// The keys a compare looks at, before the request.
Reply<std::vector<KeyValue>> CompareTargets(const Compare& c, const KvView& view) {
  if (!c.span.range_end.empty()) return view.Scan(c.span);
  auto kv = view.Get(c.span.key);
  if (!kv.ok()) return kv.error();
  std::vector<KeyValue> v;
  if (kv.value()) v.push_back(std::move(*kv.value()));
  return v;
}

Reply<TxnPath> PathOf(const TxnRequest& t, const KvView& view) {
  TxnPath path;
  path.succeeded = true;
  for (const auto& c : t.compare) {
    auto kvs = CompareTargets(c, view);
    if (!kvs.ok()) return kvs.error();
    bool holds;
    if (kvs.value().empty()) {
      holds = c.target != CompareTarget::kValue && CompareKv(c, KeyValue{});
    } else {
      holds = std::all_of(kvs.value().begin(), kvs.value().end(),
                          [&](const KeyValue& kv) { return CompareKv(c, kv); });
    }
    if (!holds) {
      path.succeeded = false;
      break;
    }
  }
  for (const auto& op : Branch(t, path.succeeded)) {
    if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
      auto nested = PathOf(**n, view);
      if (!nested.ok()) return nested.error();
      path.nested.push_back(std::move(nested.value()));
    }
  }
  return path;
}

// The branch's requests can all run: etcd checks every put of the path
// first (`puts`), then every range, before applying anything.
std::optional<ServiceError> CheckPath(const TxnRequest& t, const TxnPath& p, bool puts,
                                      const TxnOverlay& txn) {
  size_t nested = 0;
  const KvView& view = txn.view();
  for (const auto& op : Branch(t, p.succeeded)) {
    if (auto* put = std::get_if<PutRequest>(&op.op); put && puts) {
      if (put->ignore_value || put->ignore_lease) {
        auto kv = view.Get(put->key);
        if (!kv.ok()) return kv.error();
        if (!kv.value()) return etcd_errors::KeyNotFound();
      }
      if (put->lease != 0 && !view.LeaseExists(put->lease)) return etcd_errors::LeaseNotFound();
    } else if (auto* r = std::get_if<RangeRequest>(&op.op); r && !puts) {
      if (r->revision > 0 && r->revision > txn.base_revision()) return etcd_errors::FutureRev();
      if (r->revision > 0 && r->revision < view.compact_revision()) {
        return etcd_errors::Compacted();
      }
    } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
      if (auto e = CheckPath(**n, p.nested[nested++], puts, txn)) return e;
    }
  }
  return std::nullopt;
}

// A Range op inside a write request: at the current revision it sees the
// writes before it; at an older one, the store.
Reply<RangeResponse> RangeInTxn(const RangeRequest& r, const TxnOverlay& txn) {
  const int64_t current = txn.current();
  const int64_t rev = r.revision > 0 ? r.revision : current;
  if (rev > current) return etcd_errors::FutureRev();
  if (rev < txn.view().compact_revision()) return etcd_errors::Compacted();
  if (rev != current) return txn.view().RangeAt(r, rev, current);
  auto all = txn.Scan(r.span);
  if (!all.ok()) return all.error();
  const auto count = static_cast<int64_t>(all.value().size());
  return ShapeRange(r, std::move(all.value()), count, current);
}

Reply<TxnResponse> RunPath(const TxnRequest& t, const TxnPath& p, TxnOverlay& txn) {
  TxnResponse resp;
  resp.succeeded = p.succeeded;
  size_t nested = 0;
  for (const auto& op : Branch(t, p.succeeded)) {
    if (auto* r = std::get_if<RangeRequest>(&op.op)) {
      auto rr = RangeInTxn(*r, txn);
      if (!rr.ok()) return rr.error();
      resp.responses.emplace_back().response.emplace<RangeResponse>(std::move(rr.value()));
    } else if (auto* put = std::get_if<PutRequest>(&op.op)) {
      auto pr = RunPut(*put, txn);
      if (!pr.ok()) return pr.error();
      resp.responses.emplace_back().response.emplace<PutResponse>(std::move(pr.value()));
    } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
      auto dr = RunDeleteRange(*d, txn);
      if (!dr.ok()) return dr.error();
      resp.responses.emplace_back().response.emplace<DeleteRangeResponse>(std::move(dr.value()));
    } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
      auto nr = RunPath(**n, p.nested[nested++], txn);
      if (!nr.ok()) return nr.error();
      nr.value().header.revision = 0;  // etcd leaves a nested Txn's header empty
      resp.responses.emplace_back().response = std::make_shared<TxnResponse>(std::move(nr.value()));
    }
  }
  resp.header.revision = txn.current();
  return resp;
}

// etcd's checkIntervals: within one branch list, no key may be put twice or
// put inside a range the same list deletes, nested Txns included (their two
// branches may put the same key, as only one runs).
struct WrittenKeys {
  std::set<std::string> puts;
  std::vector<KeySpan> deletes;
  // etcd compares the raw [key, range_end) here, without the "\0 means to
  // the end" rule of the read path, so such a delete conflicts with no put;
  // clients have come to rely on what etcd accepts, so the same is kept.
  bool Deleted(const std::string& key) const {
    for (const auto& d : deletes) {
      if (d.range_end.empty() ? key == d.key : (d.key <= key && key < d.range_end)) return true;
    }
    return false;
  }
};

std::optional<ServiceError> CheckIntervals(const std::vector<RequestOp>& ops, WrittenKeys* out) {
  WrittenKeys here;
  for (const auto& op : ops) {
    if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) here.deletes.push_back(d->span);
  }
  for (const auto& op : ops) {
    auto* t = std::get_if<std::shared_ptr<TxnRequest>>(&op.op);
    if (t == nullptr || !*t) continue;
    WrittenKeys then_keys, else_keys;
    if (auto e = CheckIntervals((*t)->success, &then_keys)) return e;
    if (auto e = CheckIntervals((*t)->failure, &else_keys)) return e;
    for (const auto& k : then_keys.puts) {
      if (here.puts.count(k) || here.Deleted(k)) return etcd_errors::DuplicateKey();
      here.puts.insert(k);
    }
    for (const auto& k : else_keys.puts) {
      if ((here.puts.count(k) && !then_keys.puts.count(k)) || here.Deleted(k)) {
        return etcd_errors::DuplicateKey();
      }
      here.puts.insert(k);
    }
    here.deletes.insert(here.deletes.end(), then_keys.deletes.begin(), then_keys.deletes.end());
    here.deletes.insert(here.deletes.end(), else_keys.deletes.begin(), else_keys.deletes.end());
  }
  for (const auto& op : ops) {
    auto* p = std::get_if<PutRequest>(&op.op);
    if (p == nullptr) continue;
    if (here.puts.count(p->key) || here.Deleted(p->key)) return etcd_errors::DuplicateKey();
    here.puts.insert(p->key);
  }
  *out = std::move(here);
  return std::nullopt;
}

std::optional<ServiceError> CheckOps(const TxnRequest& t, size_t max_ops) {
  const size_t opc = std::max({t.compare.size(), t.success.size(), t.failure.size()});
  if (opc > max_ops) return etcd_errors::TooManyOps();
  for (const auto& c : t.compare) {
    if (c.span.key.empty()) return etcd_errors::EmptyKey();
  }
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      if (auto* r = std::get_if<RangeRequest>(&op.op)) {
        if (r->span.key.empty()) return etcd_errors::EmptyKey();
      } else if (auto* p = std::get_if<PutRequest>(&op.op)) {
        if (auto e = CheckPut(*p)) return e;
      } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
        if (d->span.key.empty()) return etcd_errors::EmptyKey();
      } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op)) {
        if (!*n) return etcd_errors::KeyNotFound();  // etcd's answer to an empty RequestOp
        if (auto e = CheckOps(**n, max_ops - opc)) return e;
      }
    }
  }
  return std::nullopt;
}

uint64_t PutBytes(const std::vector<RequestOp>& ops) {
  uint64_t n = 0;
  for (const auto& op : ops) {
    if (auto* p = std::get_if<PutRequest>(&op.op)) n += p->key.size() + p->value.size();
    if (auto* t = std::get_if<std::shared_ptr<TxnRequest>>(&op.op); t && *t) {
      n += TxnPutBytes(**t);
    }
  }
  return n;
}

void AddFootprint(const TxnRequest& t, TxnFootprint* out) {
  auto add_span = [&](const KeySpan& span) {
    if (span.range_end.empty()) {
      out->keys.push_back(span.key);
    } else {
      out->spans.push_back(span);
    }
  };
  for (const auto& c : t.compare) add_span(c.span);
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      if (auto* r = std::get_if<RangeRequest>(&op.op)) {
        if (r->revision > 0) {
          out->past_ranges.push_back(*r);
        } else {
          add_span(r->span);
        }
      } else if (auto* p = std::get_if<PutRequest>(&op.op)) {
        out->keys.push_back(p->key);
        if (p->lease != 0) out->leases.push_back(p->lease);
      } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.op)) {
        add_span(d->span);
      } else if (auto* n = std::get_if<std::shared_ptr<TxnRequest>>(&op.op); n && *n) {
        AddFootprint(**n, out);
      }
    }
  }
}

void Stamp(int64_t revision, int64_t pending, int64_t* field) {
  if (*field == pending) *field = revision;
}

void Stamp(int64_t revision, int64_t pending, KeyValue* kv) {
  Stamp(revision, pending, &kv->mod_revision);
  Stamp(revision, pending, &kv->create_revision);
}

}  // namespace

ServiceError DamagedValue(std::string_view key) {
  return {ErrorCode::kInternal,
          "strata: a stored version of key '" + std::string(key) + "' is not an etcd value"};
}

std::optional<KeyRange> SpanToKeyRange(const KeySpan& span) {
  KeyRange r;
  r.start = span.key;
  if (span.range_end.empty()) {
    r.end = span.key + std::string(1, '\0');
  } else if (span.range_end == std::string_view("\0", 1)) {
    r.end = std::nullopt;
  } else {
    if (span.key >= span.range_end) return std::nullopt;
    r.end = span.range_end;
  }
  return r;
}

std::optional<KeyValue> StoredToKeyValue(std::string_view key, Timestamp ts,
                                         std::string_view bytes) {
  auto sv = DecodeStoredValue(bytes);
  if (!sv) return std::nullopt;
  KeyValue kv;
  kv.key = std::string(key);
  kv.mod_revision = static_cast<int64_t>(ts.value());
  kv.create_revision = sv->create_revision == 0 ? kv.mod_revision : sv->create_revision;
  kv.version = sv->version;
  kv.lease = sv->lease;
  kv.value = std::string(sv->value);
  return kv;
}

bool SpanContains(const KeySpan& span, std::string_view key) {
  auto r = SpanToKeyRange(span);
  return r && r->Contains(key);
}

// --- TxnOverlay --------------------------------------------------------------

Reply<std::optional<KeyValue>> TxnOverlay::Get(const std::string& key) const {
  auto it = writes_.find(key);
  if (it != writes_.end()) return it->second.now;
  return view_.Get(key);
}

Reply<std::vector<KeyValue>> TxnOverlay::Scan(const KeySpan& span) const {
  auto base = view_.Scan(span);
  if (!base.ok() || writes_.empty()) return base;
  std::map<std::string, KeyValue> merged;
  for (auto& kv : base.value()) merged.emplace(kv.key, std::move(kv));
  for (const auto& [key, w] : writes_) {
    if (!SpanContains(span, key)) continue;
    if (w.now) {
      merged[key] = *w.now;
    } else {
      merged.erase(key);
    }
  }
  std::vector<KeyValue> out;
  out.reserve(merged.size());
  for (auto& [key, kv] : merged) out.push_back(std::move(kv));
  return out;
}

void TxnOverlay::Put(const std::string& key, std::string_view value, int64_t lease,
                     const std::optional<KeyValue>& prev) {
  KeyValue kv;
  kv.key = key;
  kv.mod_revision = revision_;
  kv.create_revision = prev ? prev->create_revision : revision_;
  kv.version = prev ? prev->version + 1 : 1;
  kv.lease = lease;
  kv.value = std::string(value);
  StoredValue sv;
  sv.create_revision = kv.create_revision == revision_ ? 0 : kv.create_revision;
  sv.version = kv.version;
  sv.lease = lease;
  sv.value = value;
  Event e;
  e.type = Event::Type::kPut;
  e.kv = kv;
  Record(key, EncodeStoredValue(sv), std::move(kv), prev);
  // As etcd: an event that creates the key has no prev_kv, even when the
  // same Txn deleted an older life of the key first.
  if (e.kv.version != 1) e.prev_kv = writes_[key].before;
  events_.push_back(std::move(e));
}

void TxnOverlay::Delete(const KeyValue& prev) {
  Event e;
  e.type = Event::Type::kDelete;
  e.kv.key = prev.key;
  e.kv.mod_revision = revision_;
  Record(prev.key, std::nullopt, std::nullopt, prev);
  e.prev_kv = writes_[prev.key].before;
  events_.push_back(std::move(e));
}

std::vector<BatchWrite> TxnOverlay::TakeWrites() {
  std::vector<BatchWrite> out;
  out.reserve(writes_.size());
  for (auto& [key, w] : writes_) out.push_back({key, std::move(w.stored)});
  return out;
}

std::vector<std::tuple<std::string, int64_t, int64_t>> TxnOverlay::LeaseMoves() const {
  std::vector<std::tuple<std::string, int64_t, int64_t>> out;
  for (const auto& [key, w] : writes_) {
    const int64_t after = w.now ? w.now->lease : 0;
    if (w.lease_before != after) out.emplace_back(key, w.lease_before, after);
  }
  return out;
}

int64_t TxnOverlay::LiveKeyDelta() const {
  int64_t delta = 0;
  for (const auto& [key, w] : writes_) delta += (w.now ? 1 : 0) - (w.before ? 1 : 0);
  return delta;
}

void TxnOverlay::Record(const std::string& key, std::optional<std::string> stored,
                        std::optional<KeyValue> now, const std::optional<KeyValue>& prev) {
  auto [it, inserted] = writes_.try_emplace(key);
  if (inserted) {
    it->second.before = prev;
    it->second.lease_before = prev ? prev->lease : 0;
  }
  it->second.stored = std::move(stored);
  it->second.now = std::move(now);
}

// --- the requests ------------------------------------------------------------

std::optional<ServiceError> CheckPut(const PutRequest& r) {
  if (r.key.empty()) return etcd_errors::EmptyKey();
  if (r.ignore_value && !r.value.empty()) return etcd_errors::ValueProvided();
  if (r.ignore_lease && r.lease != 0) return etcd_errors::LeaseProvided();
  return std::nullopt;
}

std::optional<ServiceError> CheckTxnRequest(const TxnRequest& request, size_t max_txn_ops) {
  if (auto e = CheckOps(request, max_txn_ops)) return e;
  WrittenKeys ignored;
  if (auto e = CheckIntervals(request.success, &ignored)) return e;
  if (auto e = CheckIntervals(request.failure, &ignored)) return e;
  return std::nullopt;
}

uint64_t TxnPutBytes(const TxnRequest& request) {
  return std::max(PutBytes(request.success), PutBytes(request.failure));
}

Reply<PutResponse> RunPut(const PutRequest& request, TxnOverlay& txn) {
  auto prev = txn.Get(request.key);
  if (!prev.ok()) return prev.error();
  const auto& p = prev.value();
  if ((request.ignore_value || request.ignore_lease) && !p) return etcd_errors::KeyNotFound();
  PutResponse resp;
  txn.Put(request.key, request.ignore_value ? std::string_view(p->value) : request.value,
          request.ignore_lease ? p->lease : request.lease, p);
  if (request.prev_kv) resp.prev_kv = p;
  resp.header.revision = txn.revision();
  return resp;
}

Reply<DeleteRangeResponse> RunDeleteRange(const DeleteRangeRequest& request, TxnOverlay& txn) {
  auto kvs = txn.Scan(request.span);
  if (!kvs.ok()) return kvs.error();
  DeleteRangeResponse resp;
  for (const auto& kv : kvs.value()) txn.Delete(kv);
  resp.deleted = static_cast<int64_t>(kvs.value().size());
  if (request.prev_kv) resp.prev_kvs = std::move(kvs.value());
  resp.header.revision = txn.current();
  return resp;
}

Reply<TxnResponse> RunTxn(const TxnRequest& request, TxnOverlay& txn) {
  // 1. Every compare, against the state before the Txn.
  auto path = PathOf(request, txn.view());
  if (!path.ok()) return path.error();
  // 2. Every put of the path can run, then every range.
  if (auto e = CheckPath(request, path.value(), true, txn)) return *e;
  if (auto e = CheckPath(request, path.value(), false, txn)) return *e;
  // 3. Run the branch; reads see the writes before them.
  auto result = RunPath(request, path.value(), txn);
  if (result.ok()) result.value().header.revision = txn.current();
  return result;
}

bool RangeNeedsAll(const RangeRequest& request) {
  const bool filtered = request.min_mod_revision != 0 || request.max_mod_revision != 0 ||
                        request.min_create_revision != 0 || request.max_create_revision != 0;
  return filtered || request.sort_order != SortOrder::kNone ||
         request.sort_target != SortTarget::kKey;
}

RangeResponse ShapeRange(const RangeRequest& request, std::vector<KeyValue> kvs, int64_t count,
                         int64_t current) {
  RangeResponse resp;
  resp.header.revision = current;
  resp.count = count;
  if (request.count_only) return resp;
  resp.kvs = std::move(kvs);
  auto prune = [&](auto&& drop) {
    resp.kvs.erase(std::remove_if(resp.kvs.begin(), resp.kvs.end(), drop), resp.kvs.end());
  };
  if (request.max_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision > request.max_mod_revision; });
  }
  if (request.min_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision < request.min_mod_revision; });
  }
  if (request.max_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision > request.max_create_revision; });
  }
  if (request.min_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision < request.min_create_revision; });
  }
  SortOrder order = request.sort_order;
  if (request.sort_target != SortTarget::kKey && order == SortOrder::kNone) {
    order = SortOrder::kAscend;
  }
  if (order != SortOrder::kNone) {
    auto less = [&](const KeyValue& a, const KeyValue& b) {
      switch (request.sort_target) {
        case SortTarget::kKey:
          return a.key < b.key;
        case SortTarget::kVersion:
          return a.version < b.version;
        case SortTarget::kCreate:
          return a.create_revision < b.create_revision;
        case SortTarget::kMod:
          return a.mod_revision < b.mod_revision;
        case SortTarget::kValue:
          return a.value < b.value;
      }
      return false;
    };
    if (order == SortOrder::kAscend) {
      std::stable_sort(resp.kvs.begin(), resp.kvs.end(), less);
    } else {
      std::stable_sort(resp.kvs.begin(), resp.kvs.end(),
                       [&](const KeyValue& a, const KeyValue& b) { return less(b, a); });
    }
  }
  const size_t limit = request.limit > 0 ? static_cast<size_t>(request.limit) : 0;
  if (limit != 0 && resp.kvs.size() > limit) {
    resp.kvs.resize(limit);
    resp.more = true;
  }
  if (request.keys_only) {
    for (auto& kv : resp.kvs) kv.value.clear();
  }
  return resp;
}

TxnFootprint FootprintOf(const TxnRequest& request) {
  TxnFootprint out;
  AddFootprint(request, &out);
  return out;
}

void StampRevision(int64_t revision, PutResponse* r, int64_t pending) {
  Stamp(revision, pending, &r->header.revision);
  if (r->prev_kv) Stamp(revision, pending, &*r->prev_kv);
}

void StampRevision(int64_t revision, DeleteRangeResponse* r, int64_t pending) {
  Stamp(revision, pending, &r->header.revision);
  for (auto& kv : r->prev_kvs) Stamp(revision, pending, &kv);
}

void StampRevision(int64_t revision, TxnResponse* r, int64_t pending) {
  Stamp(revision, pending, &r->header.revision);
  for (auto& op : r->responses) {
    if (auto* range = std::get_if<RangeResponse>(&op.response)) {
      Stamp(revision, pending, &range->header.revision);
      for (auto& kv : range->kvs) Stamp(revision, pending, &kv);
    } else if (auto* put = std::get_if<PutResponse>(&op.response)) {
      StampRevision(revision, put, pending);
    } else if (auto* del = std::get_if<DeleteRangeResponse>(&op.response)) {
      StampRevision(revision, del, pending);
    } else if (auto* nested = std::get_if<std::shared_ptr<TxnResponse>>(&op.response)) {
      if (*nested) StampRevision(revision, nested->get(), pending);
    }
  }
}

}  // namespace strata::service
