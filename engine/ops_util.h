// Helpers shared by the ops_*.cpp files (internal to the engine).
#pragma once

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace trine::detail {

// Throws unless `t` is a defined float32 tensor.
void check_float(const Tensor& t, const char* op, const char* name = "input");
// Throws unless both tensors live on the same device.
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
// Throws unless `t` is a defined int32 tensor.
void check_int(const Tensor& t, const char* op, const char* name = "index");

// Forward of a broadcasting binary op (no graph).
Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name);
// Forward of a unary op (no graph).
Tensor unary_forward(UnaryOp op, const Tensor& x, float p0 = 0.f, float p1 = 0.f);

}  // namespace trine::detail
