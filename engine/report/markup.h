// Safe text and numbers for the HTML/SVG the report writes: escaping, and number formatting that
// never lets "nan" or "inf" reach an attribute.
#pragma once

#include <string>
#include <string_view>

namespace trine::report {

// `text` with & < > " ' replaced by entities: safe inside element content and inside a
// double- or single-quoted attribute, in HTML and in inline SVG.
std::string escape_html(std::string_view text);

// A coordinate for an SVG attribute: fixed-point with `decimals` places, trailing zeros trimmed
// ("12.5", "3", "-0.25"). Non-finite values become "0": the charts skip them before drawing,
// so this is a last guard that keeps the markup valid, not a way to plot them.
std::string svg_number(double v, int decimals = 1);

// A value for people to read (tables, tooltips, legends): `significant` digits, no exponent for
// magnitudes in [1e-4, 1e6), "NaN" / "inf" / "-inf" for non-finite values.
std::string format_number(double v, int significant = 4);

}  // namespace trine::report
