// libFuzzer target: the LFW pairs.txt parser, and resolving the parsed pairs against a small
// fixed folder listing (LFW-named and free-named identity folders).
#include <cstddef>
#include <cstdint>
#include <string>

#include "datasets/lfw_pairs.h"
#include "engine/error.h"

namespace {

const trine::ImageTree& tree() {
  static const trine::ImageTree t = [] {
    trine::ImageTree tr;
    tr.root = "/faces";
    tr.identities = {"Alice", "Bob", "c", "empty"};
    tr.files = {{"Alice_0001.jpg", "Alice_0002.jpg", "Alice_0010.jpg"},
                {"Bob_0001.jpg"},
                {"x.png", "y.png"},
                {}};
    return tr;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    trine::PairsFile pf = trine::parse_pairs(text, "fuzz.txt");
    if (static_cast<int64_t>(pf.pairs.size()) != int64_t{pf.folds} * 2 * pf.per_fold)
      __builtin_trap();
    const std::string again = trine::format_pairs(pf);
    trine::PairsFile back = trine::parse_pairs(again, "again.txt");  // what it writes, it reads
    if (back.pairs.size() != pf.pairs.size()) __builtin_trap();
    for (int32_t f = 0; f < pf.folds && f < 4; ++f) trine::fold_identities(pf, f);
    trine::check_pairs_exist(pf, tree());
  } catch (const trine::Error&) {
  }
  return 0;
}
