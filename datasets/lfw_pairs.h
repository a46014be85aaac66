// Face-verification pairs in the LFW `pairs.txt` format: reading, writing, resolving to images
// of an ImageFolder, and generating an identity-disjoint k-fold pairs file for any image folder.
//
// Format (LFW View 2): a header line "<folds><TAB><n>", then for each fold n "same" lines
// `name<TAB>i<TAB>j` followed by n "different" lines `name1<TAB>i<TAB>name2<TAB>j`. Fields may be
// separated by any blanks; blank lines at the end and CRLF line ends are accepted.
//
// Which file is "image i of name" (i >= 1), decided per identity folder from its sorted listing
// (ImageTree, all visible regular files):
//   - LFW naming: when every file of the folder is named `<name>_<NNNN>.jpg` (the number zero-
//     padded to at least 4 digits, as in LFW), image i is the file `<name>_<i as %04d>.jpg`;
//   - otherwise: image i is the i-th file (1-based) of the sorted listing.
// The writer of generated pairs and the reader use the same rule (pair_image_number and
// pair_image_file), so generated files resolve back to the images they were made from, and the
// official LFW pairs resolve as LFW defines them. Under the second rule the numbering counts
// every file in the folder, including ones the ImageFolder skipped as unreadable, so it does
// not change when a file turns out to be corrupt; a generated file stays valid as long as the
// folder's listing does not change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datasets/image_folder.h"

namespace trine {

// One line of a pairs file.
struct FacePair {
  std::string name1;
  int64_t index1 = 0;  // image number, >= 1 (see the rule above)
  std::string name2;   // equals name1 for a same pair
  int64_t index2 = 0;
  bool same = false;
  int32_t fold = 0;  // 0-based: fold 0 is LFW's "fold 1"
  int64_t line = 0;  // 1-based line number in the file (0 when generated)
};

// A whole pairs file: folds * 2 * per_fold pairs, fold by fold, same pairs first in each fold.
struct PairsFile {
  std::string path;  // for messages ("<generated>" when generated)
  int32_t folds = 0;
  int64_t per_fold = 0;  // same pairs per fold (= different pairs per fold)
  std::vector<FacePair> pairs;
};

// Parses pairs text. `path` names the source in messages. Throws DataError naming path:line for
// a malformed header, a wrong field count, a non-numeric or < 1 image number, a different pair
// naming one identity twice, or a line count that does not match the header's folds x 2 x n.
PairsFile parse_pairs(const std::string& text, const std::string& path);
// Reads and parses a pairs file; DataError when it cannot be read.
PairsFile read_pairs(const std::string& path);
// The file text: header line, then one line per pair, tab-separated, "\n" line ends.
std::string format_pairs(const PairsFile& pairs);
// Writes format_pairs(pairs) atomically (temporary file + rename, see checkpoint.h).
void write_pairs(const std::string& path, const PairsFile& pairs);

// True when every file of the folder follows LFW naming `<name>_<NNNN>.jpg` (and there is one).
bool lfw_named_folder(const std::string& name, const std::vector<std::string>& files);
// The file that is image `number` of identity `name` whose sorted listing is `files`, or
// nullopt when there is none.
std::optional<std::string> pair_image_file(const std::string& name,
                                           const std::vector<std::string>& files, int64_t number);
// The number that names files[position] in a pairs file (inverse of pair_image_file).
int64_t pair_image_number(const std::string& name, const std::vector<std::string>& files,
                          size_t position);

// Pairs resolved to image indices of an ImageFolder: pair k compares image1[k] with image2[k].
struct ResolvedPairs {
  std::vector<int64_t> image1, image2;
  std::vector<uint8_t> same;  // 1 same identity, 0 different
  std::vector<int32_t> fold;  // 0-based
  // Sorted unique image indices used by any pair (what has to be embedded).
  std::vector<int64_t> unique_images() const;
  int64_t size() const { return static_cast<int64_t>(same.size()); }
};

// Resolves every pair against the folder's listing and loaded images. Throws DataError naming
// the pairs file and line when an identity folder or image does not exist, or when the image was
// skipped at load as unreadable.
ResolvedPairs resolve_pairs(const PairsFile& pairs, const ImageFolder& folder);
// Checks that every pair's image exists in the listing (no decoding); returns the number of
// distinct images referenced. Throws DataError like resolve_pairs.
int64_t check_pairs_exist(const PairsFile& pairs, const ImageTree& tree);

// The identities (by name) that appear in any pair of the given 0-based fold.
std::vector<std::string> fold_identities(const PairsFile& pairs, int32_t fold);

// Options of generate_pairs.
struct PairsGeneration {
  int32_t folds = 10;
  int64_t per_fold = 300;  // same pairs per fold, and as many different pairs
  uint64_t seed = 0;
};

// Makes an identity-disjoint k-fold pairs file from the loaded images of `folder`:
//   1. the identities are shuffled with Generator(seed) and dealt round-robin into `folds`
//      groups, those with >= 2 images first, so every fold gets its share of them;
//   2. per fold, `per_fold` distinct same pairs: pick an identity of the fold with >= 2 images
//      and unused pairs left (uniformly), then two distinct images of it (uniformly), rejecting
//      pairs already taken;
//   3. per fold, `per_fold` distinct different pairs: two distinct identities of the fold and one
//      image of each, uniformly, rejecting pairs already taken (when the fold has at most
//      4 x per_fold possible different pairs they are enumerated and sampled instead).
// Each block is sorted (same by name, i, j; different by name1, i, name2, j) with name1 < name2
// and i < j in same pairs. Same seed, same folder: same file. Throws UsageError, naming the fold
// and the counts, when a fold has too few identities or pairs for `per_fold`.
PairsFile generate_pairs(const ImageFolder& folder, const PairsGeneration& options);

}  // namespace trine
