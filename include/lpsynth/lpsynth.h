/* Umbrella header: everything public of lpsynth. */
#ifndef LPSYNTH_H
#define LPSYNTH_H
#include "lpsynth/plugin.h"
#include "lpsynth/runtime.h"
#endif
