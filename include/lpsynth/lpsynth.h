/* Umbrella header: every public header of lpsynth, for programs that use the
 * libraries. Which library each part needs (pkg-config names):
 *
 *   lpsynth/plugin.h      the domain plugin ABI          headers only (lpsynth)
 *   lpsynth/runtime.h     loader, host API, JSONL, files lpsynth-runtime
 *   lpsynth/metrics.h     BLEU-4                          lpsynth-runtime
 *   lpsynth/engine.h      the generic neural engine       lpsynth-engine
 *   lpsynth/model.h       models, batches, beam search    lpsynth-model
 *   lpsynth/checkpoint.h  checkpoint files                lpsynth-model
 *   lpsynth/train.h       the training loop               lpsynth-model
 *   lpsynth/synth.h       synthesis (beam/guided/solver)  lpsynth-model
 *   lpsynth/task.h        what a task line means          lpsynth-model
 *
 * `pkg-config --cflags --libs lpsynth-model` links all three libraries. A
 * domain plugin includes only <lpsynth/plugin.h> and links nothing: it gets
 * everything from the host through lp_host_api (plugins/README.md).
 * Ownership and errors are stated at the top of each header. */
#ifndef LPSYNTH_H
#define LPSYNTH_H
#include "lpsynth/plugin.h"
#include "lpsynth/runtime.h"
#include "lpsynth/metrics.h"
#include "lpsynth/engine.h"
#include "lpsynth/model.h"
#include "lpsynth/checkpoint.h"
#include "lpsynth/train.h"
#include "lpsynth/synth.h"
#include "lpsynth/task.h"
#endif
