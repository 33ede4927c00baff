// A store's whole contents as bytes in memory, and back: what a replicated
// state holding an MvccStore saves into a Raft snapshot. The per-key
// coding is the checkpoint's (storage/checkpoint.h), shared from here.
//
// Format (varints LEB128): "STRATAIM" | varint format version (1) |
// varint horizon | varint max timestamp + 1 (0: none) | varint key count |
// keys, each as PutExportedKey writes it. Nothing may follow.
//
// Saving reads the store a batch of keys at a time (ExportKeys), so
// writers wait for one batch at most; the image is a consistent cut only
// if no writer runs meanwhile, which is how a Raft state machine saves
// (on the thread that applies, or over an engine nothing writes any more).
#ifndef STRATA_STORAGE_STORE_IMAGE_H_
#define STRATA_STORAGE_STORE_IMAGE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "storage/coding.h"
#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::storage {

// One key with its write count and every stored version:
//   bytes key | varint write count | varint version count | per version:
//   varint timestamp | varint version | u8 kind (0 delete, 1 value) | [bytes value]
void PutExportedKey(std::string* out, std::string_view key, uint64_t write_count,
                    std::span<const ExportedVersion> versions);
// Reads one key PutExportedKey wrote into `store` (RestoreVersion, or
// RestoreRetiredKey for a key without versions) and adds its version
// count to `*versions`. False if the bytes do not decode; the store may
// then hold part of the key.
bool RestoreExportedKey(Decoder* in, MvccStore* store, uint64_t* versions);

std::string SaveStoreImage(const MvccStore& store);
// Into an empty store. kInvalidArgument if `image` does not decode.
Status LoadStoreImage(std::string_view image, MvccStore* store);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_STORE_IMAGE_H_
