// stb_image_write (PNG, JPEG, BMP writers) for programs that make test images: its
// implementation is compiled into each file that includes this header, file-local
// (STB_IMAGE_WRITE_STATIC), so nothing clashes with libtrine's own copy. Include it once per file.
#pragma once

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop
