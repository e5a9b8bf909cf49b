// The CPU step of GET /items/<id>/summary: run on corio's CPU pool through
// offload, so the event loop keeps serving other requests meanwhile.
#pragma once

#include <string>

#include "item.hpp"

namespace service {

/// The summary's JSON: the item, its price formatted with and without
/// VAT, and a fingerprint of the record (a hash stretched over many
/// rounds, standing in for real CPU work such as rendering, signing or
/// resizing: a fraction of a millisecond). Pure: safe on any thread.
std::string render_summary(const item& it);

}  // namespace service
