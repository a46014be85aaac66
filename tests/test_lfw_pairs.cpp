// LFW-style pairs files: parsing (with line-numbered errors), the image-number rule for LFW-named
// and freely named folders, resolving to ImageFolder indices, generating identity-disjoint folds,
// and the official pairs.txt when the shared data is present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "datasets/image_folder.h"
#include "datasets/lfw_pairs.h"
#include "engine/error.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

// Folders made by fresh_dir, removed when the test program exits.
std::vector<std::unique_ptr<test::TempDir>> scratch;
fs::path fresh_dir(const std::string& name) {
  scratch.push_back(std::make_unique<test::TempDir>("lfw_pairs_" + name));
  return scratch.back()->path();
}

// A 2x2 grey PGM with a value from `seed`. stb_image recognizes the format by content, so the
// file may be named .jpg.
void write_image(const fs::path& p, int seed) {
  std::string s = "P5\n2 2\n255\n";
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((seed * 7 + i) % 256));
  test::write_bytes(p, s);
}

template <typename E, typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception of the expected type";
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Two folds of two same and two different pairs each.
const char* kSmall =
    "2\t2\n"
    "Ann\t1\t2\n"
    "Ann\t1\t3\n"
    "Ann\t2\tbob\t1\n"
    "Cy\t5\tbob\t3\n"
    "Dee\t1\t2\n"
    "bob\t1\t2\n"
    "Ann\t3\tDee\t2\n"
    "Cy\t2\tDee\t1\n";

TEST(LfwPairs, ParsesFoldsSameAndDifferentPairs) {
  PairsFile pf = parse_pairs(kSmall, "small.txt");
  EXPECT_EQ(pf.folds, 2);
  EXPECT_EQ(pf.per_fold, 2);
  ASSERT_EQ(pf.pairs.size(), 8u);
  const FacePair& s = pf.pairs[1];
  EXPECT_TRUE(s.same);
  EXPECT_EQ(s.name1, "Ann");
  EXPECT_EQ(s.name2, "Ann");
  EXPECT_EQ(s.index1, 1);
  EXPECT_EQ(s.index2, 3);
  EXPECT_EQ(s.fold, 0);
  EXPECT_EQ(s.line, 3);
  const FacePair& d = pf.pairs[3];
  EXPECT_FALSE(d.same);
  EXPECT_EQ(d.name1, "Cy");
  EXPECT_EQ(d.index1, 5);
  EXPECT_EQ(d.name2, "bob");
  EXPECT_EQ(d.index2, 3);
  EXPECT_EQ(pf.pairs[4].fold, 1);
  EXPECT_TRUE(pf.pairs[5].same);
  EXPECT_FALSE(pf.pairs[6].same);
  EXPECT_EQ(pf.pairs[7].line, 9);
  // Formatting gives the same text back; CRLF, spaces and trailing blank lines are accepted.
  EXPECT_EQ(format_pairs(pf), kSmall);
  std::string crlf;
  for (char c : std::string(kSmall)) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  crlf += "\r\n\n  \n";
  EXPECT_EQ(format_pairs(parse_pairs(crlf, "crlf.txt")), kSmall);
  EXPECT_EQ(fold_identities(pf, 0), (std::vector<std::string>{"Ann", "Cy", "bob"}));
}

// Replaces line `n` (1-based) of kSmall.
std::string with_line(int n, const std::string& text) {
  std::vector<std::string> lines;
  std::string s = kSmall, cur;
  for (char c : s) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  lines[n - 1] = text;
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(LfwPairs, MalformedLinesAreErrorsWithTheLineNumber) {
  auto err = [](const std::string& text) {
    return error_of<DataError>([&] { parse_pairs(text, "p.txt"); });
  };
  std::string e = err(with_line(3, "Ann\t1\t3\t4"));  // same pair with 4 fields
  EXPECT_TRUE(contains(e, "p.txt:3:") && contains(e, "3 fields")) << e;
  e = err(with_line(4, "Ann\t2\tbob"));  // different pair with 3 fields
  EXPECT_TRUE(contains(e, "p.txt:4:") && contains(e, "4 fields")) << e;
  e = err(with_line(6, "Dee\tone\t2"));  // non-numeric image number
  EXPECT_TRUE(contains(e, "p.txt:6:") && contains(e, "'one'")) << e;
  e = err(with_line(7, "bob\t0\t2"));  // numbers start at 1
  EXPECT_TRUE(contains(e, "p.txt:7:") && contains(e, "'0'")) << e;
  e = err(with_line(8, "Ann\t3\tAnn\t2"));  // a different pair of one identity
  EXPECT_TRUE(contains(e, "p.txt:8:") && contains(e, "twice")) << e;
  e = err(with_line(9, "Cy\t2x\tDee\t1"));
  EXPECT_TRUE(contains(e, "p.txt:9:")) << e;
  e = err(with_line(5, ""));  // blank line inside the body
  EXPECT_TRUE(contains(e, "p.txt:5:")) << e;
  e = err(with_line(1, "2 two"));
  EXPECT_TRUE(contains(e, "p.txt:1:") && contains(e, "header")) << e;
  e = err("");
  EXPECT_TRUE(contains(e, "p.txt:1:")) << e;
  // Wrong fold count: the header promises 3 folds (12 lines), the file has 2 (8 lines) ...
  const std::string body = std::string(kSmall).substr(1);
  e = err('3' + body);
  EXPECT_TRUE(contains(e, "p.txt:9:") && contains(e, "2 complete fold(s)") &&
              contains(e, "promises 3 folds"))
      << e;
  // ... or 1 fold (4 lines) and the file has more.
  e = err('1' + body);
  EXPECT_TRUE(contains(e, "p.txt:6:") && contains(e, "extra line")) << e;
  e = error_of<DataError>([] { read_pairs("/nonexistent/pairs.txt"); });
  EXPECT_TRUE(contains(e, "/nonexistent/pairs.txt")) << e;
}

// A tree with both naming conventions:
//   Ann: LFW-named, Ann_0001..0003.jpg             -> image i is Ann_000i.jpg
//   Cy:  LFW-named with gaps, Cy_0002, Cy_0005     -> image 5 is Cy_0005.jpg, image 1 missing
//   Dee: Dee_0001.jpg plus extra.png (mixed)       -> sorted index: 1 Dee_0001.jpg, 2 extra.png
//   bob: free names z.png, a.pgm, m.pgm, 0bad.jpg -> sorted index: 0bad.jpg a.pgm m.pgm z.png
// 0bad.jpg is not an image, so ImageFolder skips it, but it keeps its number (1).
struct NamedTree {
  fs::path root = fresh_dir("named");
  NamedTree() {
    for (const char* d : {"Ann", "Cy", "Dee", "bob"}) fs::create_directories(root / d);
    write_image(root / "Ann" / "Ann_0001.jpg", 1);
    write_image(root / "Ann" / "Ann_0002.jpg", 2);
    write_image(root / "Ann" / "Ann_0003.jpg", 3);
    write_image(root / "Cy" / "Cy_0002.jpg", 4);
    write_image(root / "Cy" / "Cy_0005.jpg", 5);
    write_image(root / "Dee" / "Dee_0001.jpg", 6);
    write_image(root / "Dee" / "extra.png", 7);
    write_image(root / "bob" / "z.png", 8);
    write_image(root / "bob" / "a.pgm", 9);
    write_image(root / "bob" / "m.pgm", 10);
    test::write_bytes(root / "bob" / "0bad.jpg", "not an image");
  }
  ImageFolder load() const {
    ImageFolderOptions opt;
    opt.channels = 1;
    opt.warn = [](const std::string&) {};
    return ImageFolder::load(root.string(), opt);
  }
};

TEST(LfwPairs, ImageNumbersFollowOneRuleBothWays) {
  NamedTree t;
  ImageTree tree = list_image_tree(t.root.string());
  EXPECT_TRUE(lfw_named_folder("Ann", tree.files[0]));
  EXPECT_TRUE(lfw_named_folder("Cy", tree.files[1]));
  EXPECT_FALSE(lfw_named_folder("Dee", tree.files[2]));
  EXPECT_FALSE(lfw_named_folder("bob", tree.files[3]));
  EXPECT_FALSE(lfw_named_folder("Ann", {"Ann_1.jpg"}));  // not zero-padded to 4 digits
  EXPECT_FALSE(lfw_named_folder("Ann", {"Ann_0001.png"}));
  EXPECT_FALSE(lfw_named_folder("Ann", {}));
  EXPECT_EQ(pair_image_file("Cy", tree.files[1], 5), "Cy_0005.jpg");
  EXPECT_EQ(pair_image_file("Cy", tree.files[1], 1), std::nullopt);
  EXPECT_EQ(pair_image_file("Dee", tree.files[2], 2), "extra.png");
  EXPECT_EQ(pair_image_file("bob", tree.files[3], 3), "m.pgm");
  EXPECT_EQ(pair_image_file("bob", tree.files[3], 5), std::nullopt);
  EXPECT_EQ(pair_image_file("bob", tree.files[3], 0), std::nullopt);
  // Round trip: the number written for every file resolves back to that file.
  for (size_t k = 0; k < tree.identities.size(); ++k)
    for (size_t p = 0; p < tree.files[k].size(); ++p) {
      const std::string& name = tree.identities[k];
      int64_t number = pair_image_number(name, tree.files[k], p);
      EXPECT_EQ(pair_image_file(name, tree.files[k], number), tree.files[k][p]) << name << p;
    }
  EXPECT_EQ(pair_image_number("Cy", tree.files[1], 1), 5);
  EXPECT_EQ(pair_image_number("bob", tree.files[3], 3), 4);
}

TEST(LfwPairs, ResolvesPairsToImageIndices) {
  NamedTree t;
  ImageFolder f = t.load();
  ASSERT_EQ(f.size(), 10);  // 0bad.jpg skipped
  PairsFile pf = parse_pairs(
      "1\t2\n"
      "Ann\t1\t3\n"
      "bob\t2\t4\n"
      "Cy\t5\tDee\t2\n"
      "Ann\t2\tbob\t3\n",
      "r.txt");
  ResolvedPairs r = resolve_pairs(pf, f);
  ASSERT_EQ(r.size(), 4);
  auto file = [&](int64_t i) { return f.identities()[f.label(i)] + "/" + f.file_name(i); };
  EXPECT_EQ(file(r.image1[0]), "Ann/Ann_0001.jpg");
  EXPECT_EQ(file(r.image2[0]), "Ann/Ann_0003.jpg");
  EXPECT_EQ(file(r.image1[1]), "bob/a.pgm");
  EXPECT_EQ(file(r.image2[1]), "bob/z.png");
  EXPECT_EQ(file(r.image1[2]), "Cy/Cy_0005.jpg");
  EXPECT_EQ(file(r.image2[2]), "Dee/extra.png");
  EXPECT_EQ(file(r.image2[3]), "bob/m.pgm");
  EXPECT_EQ(r.same, (std::vector<uint8_t>{1, 1, 0, 0}));
  EXPECT_EQ(r.fold, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(r.unique_images().size(), 8u);
  EXPECT_EQ(check_pairs_exist(pf, f.tree()), 8);

  // Missing images and identities name the pairs file, the line and the file looked for.
  auto err = [&](const std::string& body) {
    return error_of<DataError>([&] { resolve_pairs(parse_pairs("1\t1\n" + body, "m.txt"), f); });
  };
  std::string e = err("Cy\t1\t5\nAnn\t1\tbob\t1\n");
  EXPECT_TRUE(contains(e, "m.txt:2:") && contains(e, "Cy_0001.jpg")) << e;
  e = err("Ann\t1\t2\nAnn\t1\tbob\t9\n");
  EXPECT_TRUE(contains(e, "m.txt:3:") && contains(e, "image 9 of 'bob'") &&
              contains(e, "has 4 file(s)"))
      << e;
  e = err("Ann\t1\t2\nAnn\t1\tNobody\t1\n");
  EXPECT_TRUE(contains(e, "m.txt:3:") && contains(e, "'Nobody'")) << e;
  e = err("bob\t1\t2\nAnn\t1\tDee\t1\n");  // bob's image 1 is 0bad.jpg, skipped when loading
  EXPECT_TRUE(contains(e, "m.txt:2:") && contains(e, "0bad.jpg") && contains(e, "skipped")) << e;
  // check_pairs_exist looks at the listing only: 0bad.jpg exists there.
  EXPECT_EQ(check_pairs_exist(parse_pairs("1\t1\nbob\t1\t2\nAnn\t1\tDee\t1\n", "x"), f.tree()), 4);
}

// A folder of `ids` identities with 1..6 images each, some LFW-named, some not.
fs::path make_population(const std::string& name, int ids) {
  fs::path root = fresh_dir(name);
  for (int k = 0; k < ids; ++k) {
    char id_buf[16];
    std::snprintf(id_buf, sizeof id_buf, "P%d", 100 + k);
    const std::string id = id_buf;
    fs::create_directories(root / id);
    const int n = 1 + (k * 5) % 6;
    for (int j = 0; j < n; ++j) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "_%04d.jpg", j + 1);
      std::string file = id + buf;
      if (k % 3 == 0) file = std::string("img") + char('0' + j) + ".pgm";
      write_image(root / id / file, k * 10 + j);
    }
  }
  return root;
}

TEST(LfwPairs, GeneratesIdentityDisjointFolds) {
  fs::path root = make_population("population", 60);
  ImageFolderOptions opt;
  opt.channels = 1;
  ImageFolder f = ImageFolder::load(root.string(), opt);
  PairsGeneration g;
  g.folds = 4;
  g.per_fold = 12;
  g.seed = 5;
  PairsFile pf = generate_pairs(f, g);
  ASSERT_EQ(pf.folds, 4);
  ASSERT_EQ(pf.per_fold, 12);
  ASSERT_EQ(pf.pairs.size(), 4u * 24u);
  std::vector<std::set<std::string>> ids(4);
  std::set<std::string> unique_lines;
  for (size_t k = 0; k < pf.pairs.size(); ++k) {
    const FacePair& p = pf.pairs[k];
    EXPECT_EQ(p.fold, static_cast<int32_t>(k / 24));
    EXPECT_EQ(p.same, k % 24 < 12);
    if (p.same) {
      EXPECT_EQ(p.name1, p.name2);
      EXPECT_LT(p.index1, p.index2);
    } else {
      EXPECT_LT(p.name1, p.name2);
    }
    ids[p.fold].insert(p.name1);
    ids[p.fold].insert(p.name2);
    unique_lines.insert(p.name1 + " " + std::to_string(p.index1) + " " + p.name2 + " " +
                        std::to_string(p.index2));
  }
  EXPECT_EQ(unique_lines.size(), pf.pairs.size());  // no pair twice
  for (int a = 0; a < 4; ++a)
    for (int b = a + 1; b < 4; ++b)
      for (const std::string& id : ids[a]) EXPECT_EQ(ids[b].count(id), 0u) << id;

  // Written and read back: the same pairs, and they resolve to images of the named identities.
  fs::path out = root / "pairs.txt";
  write_pairs(out.string(), pf);
  PairsFile back = read_pairs(out.string());
  EXPECT_EQ(format_pairs(back), format_pairs(pf));
  ResolvedPairs r = resolve_pairs(back, f);
  for (int64_t k = 0; k < r.size(); ++k) {
    EXPECT_EQ(f.identities()[f.label(r.image1[k])], back.pairs[k].name1);
    EXPECT_EQ(f.identities()[f.label(r.image2[k])], back.pairs[k].name2);
    EXPECT_NE(r.image1[k], r.image2[k]);
  }
  // Reproducible with the seed; another seed gives other pairs.
  EXPECT_EQ(format_pairs(generate_pairs(f, g)), format_pairs(pf));
  PairsGeneration g2 = g;
  g2.seed = 6;
  EXPECT_NE(format_pairs(generate_pairs(f, g2)), format_pairs(pf));
}

TEST(LfwPairs, GenerationRefusesImpossibleCounts) {
  NamedTree t;
  ImageFolder f = t.load();  // 4 identities: same pairs Ann 3, Cy 1, Dee 1, bob 3
  PairsGeneration g;
  g.folds = 1;
  g.per_fold = 8;  // 3 + 1 + 1 + 3 = 8 same pairs exist: all of them are taken
  PairsFile pf = generate_pairs(f, g);
  EXPECT_EQ(pf.pairs.size(), 16u);
  g.per_fold = 9;
  std::string e = error_of<UsageError>([&] { generate_pairs(f, g); });
  EXPECT_TRUE(contains(e, "fold 1") && contains(e, "8 possible same pairs")) << e;
  g.per_fold = 1;
  g.folds = 3;  // 4 identities cannot fill 3 folds of 2
  e = error_of<UsageError>([&] { generate_pairs(f, g); });
  EXPECT_TRUE(contains(e, "at least 2 identities")) << e;
}

// The official LFW View-2 pairs against the shared LFW crops, when present.
TEST(LfwPairs, OfficialPairsFileWhenPresent) {
  const char* src = std::getenv("TRINE_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "TRINE_SOURCE_DIR not set";
  fs::path faces = fs::path(src) / ".." / "shared" / "data" / "faces";
  if (!fs::exists(faces / "pairs.txt") || !fs::is_directory(faces / "lfw"))
    GTEST_SKIP() << faces << " has no pairs.txt and lfw/";
  PairsFile pf = read_pairs((faces / "pairs.txt").string());
  EXPECT_EQ(pf.folds, 10);
  EXPECT_EQ(pf.per_fold, 300);
  ASSERT_EQ(pf.pairs.size(), 6000u);
  int same = 0;
  for (const FacePair& p : pf.pairs) same += p.same;
  EXPECT_EQ(same, 3000);
  EXPECT_EQ(pf.pairs[600].fold, 1);
  EXPECT_EQ(pf.pairs[600].line, 602);
  ImageTree tree = list_image_tree((faces / "lfw").string());
  const int64_t unique = check_pairs_exist(pf, tree);  // throws when an image is missing
  EXPECT_GT(unique, 6000);
  EXPECT_LE(unique, 12000);
  // Fold 1's identities (held out from training in W2).
  EXPECT_GT(fold_identities(pf, 0).size(), 300u);
}

}  // namespace
}  // namespace trine
