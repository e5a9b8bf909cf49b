// Umbrella header: everything public in corio.
#pragma once

#include "corio/cancel.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/run.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"
#include "corio/time.hpp"
