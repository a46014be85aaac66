// Escaping and number formatting for the report's markup.
#include "engine/report/markup.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trine::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// Drops trailing zeros after a decimal point, and the point itself if nothing follows it.
void trim_zeros(std::string& s) {
  if (s.find('.') == std::string::npos) return;
  const size_t e = s.find_first_of("eE");
  std::string exponent = e == std::string::npos ? "" : s.substr(e);
  std::string mantissa = e == std::string::npos ? s : s.substr(0, e);
  while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back();
  if (!mantissa.empty() && mantissa.back() == '.') mantissa.pop_back();
  s = mantissa + exponent;
}

}  // namespace

std::string svg_number(double v, int decimals) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  std::string s(buf);
  trim_zeros(s);
  if (s == "-0") s = "0";
  return s;
}

std::string format_number(double v, int significant) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";
  if (significant < 1) significant = 1;
  const double a = std::fabs(v);
  char buf[64];
  if (a >= 1e-4 && a < 1e6) {
    // Enough decimals for `significant` digits, none beyond them.
    const int magnitude = static_cast<int>(std::floor(std::log10(a)));
    const int decimals = std::max(0, significant - 1 - magnitude);
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.*e", significant - 1, v);
  }
  std::string s(buf);
  trim_zeros(s);
  // "1.5e-05" -> "1.5e-5", "2e+06" -> "2e6": shorter, and as exact.
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string exp = s.substr(e + 1);
    const bool negative = !exp.empty() && exp[0] == '-';
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) exp.erase(0, 1);
    while (exp.size() > 1 && exp[0] == '0') exp.erase(0, 1);
    s = s.substr(0, e + 1) + (negative ? "-" : "") + exp;
  }
  return s;
}

}  // namespace trine::report
