// LFW-style pairs files: parsing, formatting, resolving, generating (see lfw_pairs.h).
#include "datasets/lfw_pairs.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/random.h"

namespace trine {

namespace {

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream is(line);
  std::string f;
  while (is >> f) out.push_back(f);
  return out;
}

// Parses a decimal integer that is the whole field; nullopt otherwise.
std::optional<int64_t> parse_int(const std::string& s) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

std::string lfw_file(const std::string& name, int64_t number) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%04lld", static_cast<long long>(number));
  return name + "_" + digits + ".jpg";
}

// The LFW number of `file` in folder `name`, or -1 when the file is not LFW-named.
int64_t lfw_number(const std::string& name, const std::string& file) {
  const std::string prefix = name + "_", suffix = ".jpg";
  if (file.size() <= prefix.size() + suffix.size() || file.compare(0, prefix.size(), prefix) != 0 ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  std::string digits = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  auto v = parse_int(digits);
  if (!v || *v < 1 || lfw_file(name, *v) != file) return -1;  // canonical zero padding only
  return *v;
}

// Where image `number` of `name` is in tree.files[k]; throws DataError naming the pair's line.
size_t locate(const PairsFile& pf, const FacePair& p, const std::string& name, int64_t number,
              const ImageTree& tree) {
  const std::string where = pf.path + ":" + std::to_string(p.line) + ": ";
  int64_t k = tree.find_identity(name);
  TRINE_CHECK_AS(DataError, k >= 0, where, "identity '", name, "' has no folder in ", tree.root);
  const auto& files = tree.files[k];
  auto file = pair_image_file(name, files, number);
  if (!file) {
    if (lfw_named_folder(name, files))
      throw DataError(where + "image " + std::to_string(number) + " of '" + name +
                      "' not found: no file " +
                      (std::filesystem::path(tree.root) / name / lfw_file(name, number)).string());
    throw DataError(where + "image " + std::to_string(number) + " of '" + name +
                    "' not found: folder " + (std::filesystem::path(tree.root) / name).string() +
                    " has " + std::to_string(files.size()) + " file(s)");
  }
  return std::lower_bound(files.begin(), files.end(), *file) - files.begin();
}

}  // namespace

PairsFile parse_pairs(const std::string& text, const std::string& path) {
  PairsFile pf;
  pf.path = path;
  std::vector<std::string> lines;
  {
    std::istringstream is(text);
    std::string line;
    while (std::getline(is, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
  }
  // Blank lines at the end are fine; anywhere else they are malformed lines.
  while (!lines.empty() && split_fields(lines.back()).empty()) lines.pop_back();
  TRINE_CHECK_AS(DataError, !lines.empty(), path, ":1: empty pairs file");

  std::vector<std::string> head = split_fields(lines[0]);
  auto folds = head.size() == 2 ? parse_int(head[0]) : std::nullopt;
  auto per_fold = head.size() == 2 ? parse_int(head[1]) : std::nullopt;
  TRINE_CHECK_AS(DataError, folds && per_fold && *folds >= 1 && *per_fold >= 1 && *folds <= 100000,
                 path, ":1: header must be '<folds><TAB><pairs per fold>' (e.g. '10\t300'), got '",
                 lines[0], "'");
  // folds <= 100000, so the product below cannot overflow once per_fold passes this.
  TRINE_CHECK_AS(DataError, *per_fold <= (int64_t{1} << 40), path, ":1: header promises ", *folds,
                 " folds x 2 x ", *per_fold, " pairs, more than any pairs file holds");
  pf.folds = static_cast<int32_t>(*folds);
  pf.per_fold = *per_fold;
  const int64_t expected = static_cast<int64_t>(pf.folds) * 2 * pf.per_fold;
  const int64_t body = static_cast<int64_t>(lines.size()) - 1;
  if (body < expected) {
    throw DataError(
        path + ":" + std::to_string(lines.size()) + ": file ends after " + std::to_string(body) +
        " pair lines (" + std::to_string(body / (2 * pf.per_fold)) +
        " complete fold(s)); the header promises " + std::to_string(pf.folds) + " folds x 2 x " +
        std::to_string(pf.per_fold) + " = " + std::to_string(expected));
  }
  if (body > expected) {
    throw DataError(path + ":" + std::to_string(expected + 2) + ": extra line after " +
                    std::to_string(pf.folds) + " folds x 2 x " + std::to_string(pf.per_fold) +
                    " pairs (the header promises " + std::to_string(expected) + " pair lines, " +
                    "the file has " + std::to_string(body) + ")");
  }
  pf.pairs.reserve(expected);
  for (int64_t k = 0; k < expected; ++k) {
    const int64_t line_no = k + 2;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const std::vector<std::string> t = split_fields(lines[k + 1]);
    const bool same = (k % (2 * pf.per_fold)) < pf.per_fold;
    FacePair p;
    p.same = same;
    p.fold = static_cast<int32_t>(k / (2 * pf.per_fold));
    p.line = line_no;
    if (same) {
      TRINE_CHECK_AS(DataError, t.size() == 3, where, "a same pair needs 3 fields 'name i j', got ",
                     t.size(), ": '", lines[k + 1], "'");
      p.name1 = p.name2 = t[0];
    } else {
      TRINE_CHECK_AS(DataError, t.size() == 4, where,
                     "a different pair needs 4 fields 'name1 i name2 j', got ", t.size(), ": '",
                     lines[k + 1], "'");
      p.name1 = t[0];
      p.name2 = t[2];
      TRINE_CHECK_AS(DataError, p.name1 != p.name2, where, "a different pair names '", p.name1,
                     "' twice");
    }
    const std::string& f1 = t[1];
    const std::string& f2 = same ? t[2] : t[3];
    auto i1 = parse_int(f1), i2 = parse_int(f2);
    TRINE_CHECK_AS(DataError, i1 && *i1 >= 1, where, "image number must be an integer >= 1, got '",
                   f1, "'");
    TRINE_CHECK_AS(DataError, i2 && *i2 >= 1, where, "image number must be an integer >= 1, got '",
                   f2, "'");
    p.index1 = *i1;
    p.index2 = *i2;
    pf.pairs.push_back(std::move(p));
  }
  return pf;
}

PairsFile read_pairs(const std::string& path) {
  std::error_code ec;
  TRINE_CHECK_AS(DataError, !std::filesystem::is_directory(path, ec), "pairs file '", path,
                 "' is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  TRINE_CHECK_AS(DataError, in.good(), "cannot open pairs file '", path, "' (",
                 std::strerror(errno), ")");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TRINE_CHECK_AS(DataError, !in.bad(), "error reading pairs file '", path, "'");
  return parse_pairs(text, path);
}

std::string format_pairs(const PairsFile& pf) {
  std::string out = std::to_string(pf.folds) + "\t" + std::to_string(pf.per_fold) + "\n";
  for (const FacePair& p : pf.pairs) {
    if (p.same)
      out += p.name1 + "\t" + std::to_string(p.index1) + "\t" + std::to_string(p.index2) + "\n";
    else
      out += p.name1 + "\t" + std::to_string(p.index1) + "\t" + p.name2 + "\t" +
             std::to_string(p.index2) + "\n";
  }
  return out;
}

void write_pairs(const std::string& path, const PairsFile& pairs) {
  write_file_atomic(path, format_pairs(pairs));
}

bool lfw_named_folder(const std::string& name, const std::vector<std::string>& files) {
  if (files.empty()) return false;
  for (const std::string& f : files)
    if (lfw_number(name, f) < 0) return false;
  return true;
}

std::optional<std::string> pair_image_file(const std::string& name,
                                           const std::vector<std::string>& files, int64_t number) {
  if (number < 1) return std::nullopt;
  if (lfw_named_folder(name, files)) {
    std::string f = lfw_file(name, number);
    return std::binary_search(files.begin(), files.end(), f) ? std::optional<std::string>(f)
                                                             : std::nullopt;
  }
  if (number > static_cast<int64_t>(files.size())) return std::nullopt;
  return files[number - 1];
}

int64_t pair_image_number(const std::string& name, const std::vector<std::string>& files,
                          size_t position) {
  TRINE_CHECK(position < files.size(), "pair_image_number: position ", position, " of ",
              files.size(), " files");
  if (lfw_named_folder(name, files)) return lfw_number(name, files[position]);
  return static_cast<int64_t>(position) + 1;
}

std::vector<int64_t> ResolvedPairs::unique_images() const {
  std::vector<int64_t> all(image1);
  all.insert(all.end(), image2.begin(), image2.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

ResolvedPairs resolve_pairs(const PairsFile& pf, const ImageFolder& folder) {
  const ImageTree& tree = folder.tree();
  ResolvedPairs r;
  r.image1.reserve(pf.pairs.size());
  r.image2.reserve(pf.pairs.size());
  for (const FacePair& p : pf.pairs) {
    int64_t idx[2];
    for (int side = 0; side < 2; ++side) {
      const std::string& name = side == 0 ? p.name1 : p.name2;
      const int64_t number = side == 0 ? p.index1 : p.index2;
      const size_t pos = locate(pf, p, name, number, tree);
      const std::string& file = tree.files[tree.find_identity(name)][pos];
      idx[side] = folder.find_image(name, file);
      TRINE_CHECK_AS(DataError, idx[side] >= 0, pf.path, ":", p.line, ": image ", number, " of '",
                     name, "' (", (std::filesystem::path(tree.root) / name / file).string(),
                     ") was skipped when loading the images (unreadable)");
    }
    r.image1.push_back(idx[0]);
    r.image2.push_back(idx[1]);
    r.same.push_back(p.same ? 1 : 0);
    r.fold.push_back(p.fold);
  }
  return r;
}

int64_t check_pairs_exist(const PairsFile& pf, const ImageTree& tree) {
  std::set<std::pair<int64_t, size_t>> seen;
  for (const FacePair& p : pf.pairs) {
    seen.emplace(tree.find_identity(p.name1), locate(pf, p, p.name1, p.index1, tree));
    seen.emplace(tree.find_identity(p.name2), locate(pf, p, p.name2, p.index2, tree));
  }
  return static_cast<int64_t>(seen.size());
}

std::vector<std::string> fold_identities(const PairsFile& pf, int32_t fold) {
  std::set<std::string> ids;
  for (const FacePair& p : pf.pairs)
    if (p.fold == fold) {
      ids.insert(p.name1);
      ids.insert(p.name2);
    }
  return {ids.begin(), ids.end()};
}

PairsFile generate_pairs(const ImageFolder& folder, const PairsGeneration& opt) {
  TRINE_CHECK_AS(UsageError, opt.folds >= 1, "pairs: folds must be >= 1, got ", opt.folds);
  TRINE_CHECK_AS(UsageError, opt.per_fold >= 1, "pairs: pairs per fold must be >= 1, got ",
                 opt.per_fold);
  const int32_t L = static_cast<int32_t>(folder.num_identities());
  TRINE_CHECK_AS(UsageError, L >= 2 * opt.folds, "pairs: ", opt.folds,
                 " folds need at least 2 identities each; the folder has ", L, " identities");
  Generator gen(opt.seed);

  // 1. Deal identities into folds: multi-image identities first, then the rest.
  std::vector<int32_t> multi, single;
  for (int32_t l = 0; l < L; ++l) (folder.count(l) >= 2 ? multi : single).push_back(l);
  gen.shuffle(multi);
  gen.shuffle(single);
  std::vector<std::vector<int32_t>> groups(opt.folds);
  int64_t dealt = 0;
  for (int32_t l : multi) groups[dealt++ % opt.folds].push_back(l);
  for (int32_t l : single) groups[dealt++ % opt.folds].push_back(l);

  // Image `k` (0-based within identity l) as (name, number) for the file.
  const ImageTree& tree = folder.tree();
  auto number_of = [&](int32_t l, int64_t k) {
    const std::string& name = folder.identities()[l];
    const auto& files = tree.files[tree.find_identity(name)];
    const std::string& file = folder.file_name(folder.first_image(l) + k);
    size_t pos = std::lower_bound(files.begin(), files.end(), file) - files.begin();
    return pair_image_number(name, files, pos);
  };

  PairsFile pf;
  pf.path = "<generated>";
  pf.folds = opt.folds;
  pf.per_fold = opt.per_fold;
  const int64_t P = opt.per_fold;
  for (int32_t f = 0; f < opt.folds; ++f) {
    const std::vector<int32_t>& g = groups[f];
    // 2. Same pairs.
    struct Cand {
      int32_t label;
      int64_t left;  // unused pairs
    };
    std::vector<Cand> cands;
    int64_t possible_same = 0;
    for (int32_t l : g) {
      int64_t n = folder.count(l);
      if (n >= 2) {
        cands.push_back({l, n * (n - 1) / 2});
        possible_same += n * (n - 1) / 2;
      }
    }
    TRINE_CHECK_AS(UsageError, possible_same >= P, "pairs: fold ", f + 1, " has ", g.size(),
                   " identities with ", possible_same, " possible same pairs, fewer than the ", P,
                   " asked for; lower --pairs-per-fold or --folds");
    std::set<std::tuple<int32_t, int64_t, int64_t>> taken_same;
    std::vector<FacePair> same;
    while (static_cast<int64_t>(same.size()) < P) {
      const size_t c = static_cast<size_t>(gen.randint(static_cast<int64_t>(cands.size())));
      const int32_t l = cands[c].label;
      const int64_t n = folder.count(l);
      int64_t a = gen.randint(n), b = gen.randint(n - 1);
      if (b >= a) ++b;
      if (a > b) std::swap(a, b);
      if (!taken_same.emplace(l, a, b).second) continue;
      if (--cands[c].left == 0) {
        cands[c] = cands.back();
        cands.pop_back();
      }
      FacePair p;
      p.name1 = p.name2 = folder.identities()[l];
      p.index1 = number_of(l, a);
      p.index2 = number_of(l, b);
      p.same = true;
      p.fold = f;
      same.push_back(std::move(p));
    }
    // 3. Different pairs, as (label a < label b, image of a, image of b).
    int64_t total = 0, sum_sq = 0;
    for (int32_t l : g) {
      total += folder.count(l);
      sum_sq += folder.count(l) * folder.count(l);
    }
    const int64_t possible_diff = (total * total - sum_sq) / 2;
    TRINE_CHECK_AS(UsageError, possible_diff >= P, "pairs: fold ", f + 1, " has ", g.size(),
                   " identities with ", possible_diff, " possible different pairs, fewer than the ",
                   P, " asked for; lower --pairs-per-fold or --folds");
    using Diff = std::tuple<int32_t, int64_t, int32_t, int64_t>;
    std::vector<Diff> chosen;
    if (possible_diff <= 4 * P) {
      std::vector<Diff> all;
      std::vector<int32_t> sorted_g(g);
      std::sort(sorted_g.begin(), sorted_g.end());
      for (size_t x = 0; x < sorted_g.size(); ++x)
        for (size_t y = x + 1; y < sorted_g.size(); ++y)
          for (int64_t i = 0; i < folder.count(sorted_g[x]); ++i)
            for (int64_t j = 0; j < folder.count(sorted_g[y]); ++j)
              all.emplace_back(sorted_g[x], i, sorted_g[y], j);
      gen.shuffle(all);
      chosen.assign(all.begin(), all.begin() + P);
    } else {
      std::set<Diff> taken;
      const int64_t G = static_cast<int64_t>(g.size());
      while (static_cast<int64_t>(chosen.size()) < P) {
        int64_t x = gen.randint(G), y = gen.randint(G - 1);
        if (y >= x) ++y;
        int32_t la = g[x], lb = g[y];
        if (la > lb) std::swap(la, lb);
        Diff d{la, gen.randint(folder.count(la)), lb, gen.randint(folder.count(lb))};
        if (taken.insert(d).second) chosen.push_back(d);
      }
    }
    std::vector<FacePair> diff;
    for (const auto& [la, i, lb, j] : chosen) {
      FacePair p;
      p.name1 = folder.identities()[la];
      p.index1 = number_of(la, i);
      p.name2 = folder.identities()[lb];
      p.index2 = number_of(lb, j);
      p.same = false;
      p.fold = f;
      diff.push_back(std::move(p));
    }
    auto key = [](const FacePair& p) { return std::tie(p.name1, p.index1, p.name2, p.index2); };
    auto by_key = [&](const FacePair& a, const FacePair& b) { return key(a) < key(b); };
    std::sort(same.begin(), same.end(), by_key);
    std::sort(diff.begin(), diff.end(), by_key);
    for (auto& p : same) pf.pairs.push_back(std::move(p));
    for (auto& p : diff) pf.pairs.push_back(std::move(p));
  }
  return pf;
}

}  // namespace trine
