// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): small valid files
// of every kind each reader takes, plus a few near misses. The corpora are committed; this
// program documents how they were made and remakes them:
//   build-fuzz/trine_fuzz_corpus tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/idx.h"
#include "datasets/lfw_pairs.h"
#include "datasets/npy.h"
#include "engine/checkpoint.h"
#include "support/image_write.h"

namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string get(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void append(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string pixels(int w, int h, int c) {
  std::string px(static_cast<size_t>(w) * h * c, '\0');
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<char>(i * 37 + 11);
  return px;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* target : {"idx", "image", "npy", "checkpoint", "pairs"})
    fs::create_directories(root / target);

  // ---- IDX: images, labels, gzip, rank 4
  trine::IdxArray images{{3, 4, 4}, {}};
  for (int i = 0; i < 48; ++i) images.data.push_back(static_cast<uint8_t>(i * 5));
  trine::write_idx((root / "idx" / "images_3x4x4").string(), images);
  trine::write_idx((root / "idx" / "images_3x4x4.gz").string(), images, true);
  trine::write_idx((root / "idx" / "labels_5").string(), {{5}, {0, 1, 2, 1, 0}});
  trine::write_idx((root / "idx" / "rank4").string(), {{1, 2, 1, 2}, {1, 2, 3, 4}});

  // ---- images: first byte = channels/size/filter selector, then the file
  auto image = [&](const std::string& name, char selector, const std::string& file) {
    put(root / "image" / name, std::string(1, selector) + file);
  };
  {
    std::string png, jpg, bmp, grey_png;
    const std::string rgb = pixels(6, 5, 3), grey = pixels(5, 4, 1);
    stbi_write_png_to_func(append, &png, 6, 5, 3, rgb.data(), 6 * 3);
    stbi_write_png_to_func(append, &grey_png, 5, 4, 1, grey.data(), 5);
    stbi_write_jpg_to_func(append, &jpg, 8, 8, 3, pixels(8, 8, 3).data(), 80);
    stbi_write_bmp_to_func(append, &bmp, 3, 3, 3, pixels(3, 3, 3).data());
    image("rgb.png", 0x07, png);
    image("grey.png", 0x02, grey_png);
    image("rgb.jpg", 0x45, jpg);
    image("grey_out.jpg", 0x0c, jpg);
    image("rgb.bmp", 0x03, bmp);
    image("grey.pgm", 0x00, std::string("P5\n3 2\n255\n").append(pixels(3, 2, 1)));
    image("grey16.pgm", 0x01, std::string("P5\n2 2\n65535\n").append(pixels(4, 2, 1)));
    image("rgb.ppm", 0x01, std::string("P6\n2 2\n255\n").append(pixels(2, 2, 3)));
    // Regressions, inputs fuzz_image found that stb_image 2.27 mishandles. A Huffman table
    // with 16 x 17 = 272 codes (past its 256-entry arrays) behind 0xFF fill bytes before SOI.
    std::string bad_dht = jpg;
    const size_t dht = bad_dht.find("\xFF\xC4");
    for (size_t k = 0; k < 16; ++k) bad_dht[dht + 5 + k] = 17;
    image("fill_bad_dht.jpg", 0x45, "\xFF\xFF" + bad_dht);
    // A legal PNG whose first IDAT chunk is empty (stb_image: memcpy to a null buffer):
    // length 0, "IDAT", the CRC-32 of "IDAT", before the real IDAT.
    std::string empty_idat = grey_png;
    empty_idat.insert(empty_idat.find("IDAT") - 4, std::string("\0\0\0\0IDAT\x35\xAF\x06\x1E", 12));
    image("empty_idat.png", 0x02, empty_idat);
  }

  // ---- .npy: float32 / float64 embeddings, integer labels, version 2.0, Fortran 1-D
  const std::vector<float> f = {0.5f, -1.f, 2.f, 3.25f, 0.f, 1e-3f};
  trine::write_npy_raw((root / "npy" / "f4_3x2.npy").string(), "<f4", {3, 2}, f.data(), 24);
  const std::vector<double> d = {1.5, -2.5};
  trine::write_npy_raw((root / "npy" / "f8_2.npy").string(), "<f8", {2}, d.data(), 16);
  const std::vector<int64_t> l8 = {0, 1, 1, 7};
  trine::write_npy_raw((root / "npy" / "i8_4.npy").string(), "<i8", {4}, l8.data(), 32);
  const std::vector<uint8_t> u1 = {3, 0, 2};
  trine::write_npy_raw((root / "npy" / "u1_3x1.npy").string(), "|u1", {3, 1}, u1.data(), 3);
  {
    // Version 2.0: a 4-byte header length.
    std::string v1 = get(root / "npy" / "f4_3x2.npy");
    const uint16_t len = static_cast<uint16_t>(static_cast<unsigned char>(v1[8]) |
                                               (static_cast<unsigned char>(v1[9]) << 8));
    std::string v2 = v1.substr(0, 6) + std::string("\x02\x00", 2);
    v2.push_back(static_cast<char>(len & 0xff));
    v2.push_back(static_cast<char>(len >> 8));
    v2.append(2, '\0');
    v2 += v1.substr(10);
    put(root / "npy" / "f4_v2.npy", v2);
    std::string fortran = v1;
    const size_t at = fortran.find("False");
    fortran.replace(at, 5, "True ");
    put(root / "npy" / "f4_fortran.npy", fortran);
  }

  // ---- checkpoints: as written (first byte 'T', even: the harness leaves the CRC alone), and
  // the same with an odd first byte (the harness seals a fresh CRC over whatever it mutated).
  {
    trine::Checkpoint ck;
    ck.meta = {{"model", "mnist-w1"}, {"trainer.step", "3"}, {"flags", "--epochs=1\n--seed=2"}};
    ck.tensors["model.0.weight"] = trine::Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, {2, 2});
    ck.tensors["optim.step"] = trine::Tensor::scalar(3.f);
    ck.tensors["labels"] = trine::Tensor::from_ints({1, 2, 3}, trine::Device::cpu());
    const std::string path = (root / "checkpoint" / "small.trine").string();
    trine::save_checkpoint(path, ck);
    std::string sealed = get(path);
    sealed[0] = 'U';
    put(root / "checkpoint" / "small_sealed.trine", sealed);
    trine::save_checkpoint((root / "checkpoint" / "empty.trine").string(), trine::Checkpoint{});
  }

  // ---- pairs files
  put(root / "pairs" / "lfw.txt",
      "2\t1\nAlice\t1\t2\nAlice\t1\tBob\t1\nc\t1\t2\nc\t2\tAlice\t10\n");
  put(root / "pairs" / "crlf.txt",
      "1 2\r\nAlice 1 2\r\nc 1 2\r\nAlice 1 Bob 1\r\nBob 1 c 2\r\n\r\n");
  put(root / "pairs" / "short.txt", "3\t1\nAlice\t1\t2\n");
  put(root / "pairs" / "bad_number.txt", "1\t1\nAlice\t1\tx\nAlice\t1\tBob\t1\n");

  return 0;
}
