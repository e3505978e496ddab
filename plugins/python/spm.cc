// C wrapper over SentencePiece (see spm.h). Nothing is thrown across the C
// boundary: every entry point catches everything and reports a message.
#include "spm.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

// Exported by libsentencepiece (src/common.h) but not declared in the
// installed headers: the trainer's log level (0 INFO, 1 WARNING, 2 ERROR).
namespace sentencepiece {
namespace logging {
int GetMinLogLevel();
void SetMinLogLevel(int v);
}  // namespace logging
}  // namespace sentencepiece

struct py_spm {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

void set_msg(char *msg, size_t msg_len, const std::string &s) {
  if (!msg || msg_len == 0) return;
  size_t n = s.size() < msg_len - 1 ? s.size() : msg_len - 1;
  std::memcpy(msg, s.data(), n);
  msg[n] = 0;
}

int fail(char *msg, size_t msg_len, int code, const std::string &s) {
  set_msg(msg, msg_len, s);
  return code;
}

// Runs f, turning every exception into a status and a message.
template <typename F>
int guarded(char *msg, size_t msg_len, const char *what, F &&f) {
  try {
    return f();
  } catch (const std::bad_alloc &) {
    return fail(msg, msg_len, PY_SPM_ENOMEM, std::string(what) + ": out of memory");
  } catch (const std::exception &e) {
    return fail(msg, msg_len, PY_SPM_EINVAL, std::string(what) + ": " + e.what());
  } catch (...) {
    return fail(msg, msg_len, PY_SPM_EINVAL, std::string(what) + ": unknown C++ exception");
  }
}

int load_into(py_spm *m, const std::string &bytes, char *msg, size_t msg_len) {
  auto st = m->sp.LoadFromSerializedProto(bytes);
  if (!st.ok())
    return fail(msg, msg_len, PY_SPM_EINVAL,
                std::string("not a SentencePiece model: ") + st.ToString());
  return PY_SPM_OK;
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  VectorIterator(const char *const *s, const size_t *lens, size_t n) : s_(s), lens_(lens), n_(n) {
    Load();
  }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    Load();
  }
  const std::string &value() const override { return cur_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void Load() {
    if (i_ < n_) cur_.assign(s_[i_] ? s_[i_] : "", s_[i_] ? lens_[i_] : 0);
  }
  const char *const *s_;
  const size_t *lens_;
  size_t n_, i_ = 0;
  std::string cur_;
};

// Restores SentencePiece's log level when training ends, however it ends.
struct QuietLogs {
  int saved;
  QuietLogs() : saved(sentencepiece::logging::GetMinLogLevel()) {
    sentencepiece::logging::SetMinLogLevel(2);
  }
  ~QuietLogs() { sentencepiece::logging::SetMinLogLevel(saved); }
};

}  // namespace

extern "C" {

int py_spm_load(const char *path, py_spm **out, char *msg, size_t msg_len) {
  if (out) *out = nullptr;
  if (!path || !out) return fail(msg, msg_len, PY_SPM_EINVAL, "no model path");
  return guarded(msg, msg_len, path, [&]() -> int {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      int e = errno;
      return fail(msg, msg_len, PY_SPM_EIO,
                  std::string("cannot read ") + path + ": " + std::strerror(e ? e : ENOENT));
    }
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) return fail(msg, msg_len, PY_SPM_EIO, std::string("cannot read ") + path);
    std::unique_ptr<py_spm> m(new py_spm);
    int rc = load_into(m.get(), bytes, msg, msg_len);
    if (rc != PY_SPM_OK) {
      std::string why = msg ? msg : "";
      return fail(msg, msg_len, rc, std::string(path) + ": " + why);
    }
    *out = m.release();
    return PY_SPM_OK;
  });
}

int py_spm_load_bytes(const char *data, size_t len, py_spm **out, char *msg, size_t msg_len) {
  if (out) *out = nullptr;
  if ((!data && len) || !out) return fail(msg, msg_len, PY_SPM_EINVAL, "no model bytes");
  return guarded(msg, msg_len, "model", [&]() -> int {
    std::unique_ptr<py_spm> m(new py_spm);
    int rc = load_into(m.get(), std::string(data ? data : "", len), msg, msg_len);
    if (rc != PY_SPM_OK) return rc;
    *out = m.release();
    return PY_SPM_OK;
  });
}

void py_spm_free(py_spm *m) {
  try {
    delete m;
  } catch (...) {
  }
}

int32_t py_spm_size(const py_spm *m) { return m ? m->sp.GetPieceSize() : 0; }
int32_t py_spm_pad_id(const py_spm *m) { return m ? m->sp.pad_id() : -1; }
int32_t py_spm_bos_id(const py_spm *m) { return m ? m->sp.bos_id() : -1; }
int32_t py_spm_eos_id(const py_spm *m) { return m ? m->sp.eos_id() : -1; }
int32_t py_spm_unk_id(const py_spm *m) { return m ? m->sp.unk_id() : -1; }

const char *py_spm_piece(const py_spm *m, int32_t id) {
  if (!m || id < 0 || id >= m->sp.GetPieceSize()) return nullptr;
  try {
    return m->sp.IdToPiece(id).c_str();
  } catch (...) {
    return nullptr;
  }
}

int32_t py_spm_piece_id(const py_spm *m, const char *s, size_t len) {
  if (!m || (!s && len)) return -1;
  try {
    std::string p(s ? s : "", len);
    int id = m->sp.PieceToId(p);
    // PieceToId answers unk_id for an unknown piece: tell them apart.
    if (id < 0 || id >= m->sp.GetPieceSize() || m->sp.IdToPiece(id) != p) return -1;
    return id;
  } catch (...) {
    return -1;
  }
}

int py_spm_is_byte(const py_spm *m, int32_t id) {
  if (!m || id < 0 || id >= m->sp.GetPieceSize()) return 0;
  try {
    return m->sp.IsByte(id) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int py_spm_is_control(const py_spm *m, int32_t id) {
  if (!m || id < 0 || id >= m->sp.GetPieceSize()) return 0;
  try {
    return m->sp.IsControl(id) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int py_spm_encode(const py_spm *m, const char *text, size_t len, int32_t **ids, size_t *n,
                  char *msg, size_t msg_len) {
  if (ids) *ids = nullptr;
  if (n) *n = 0;
  if (!m || !ids || !n || (!text && len)) return fail(msg, msg_len, PY_SPM_EINVAL, "bad arguments");
  return guarded(msg, msg_len, "encode", [&]() -> int {
    std::vector<int> v;
    auto st = m->sp.Encode(std::string_view(text ? text : "", len), &v);
    if (!st.ok()) return fail(msg, msg_len, PY_SPM_EINVAL, "encode: " + st.ToString());
    int32_t *out = static_cast<int32_t *>(std::malloc((v.size() ? v.size() : 1) * sizeof *out));
    if (!out) return fail(msg, msg_len, PY_SPM_ENOMEM, "encode: out of memory");
    for (size_t i = 0; i < v.size(); i++) out[i] = v[i];
    *ids = out;
    *n = v.size();
    return PY_SPM_OK;
  });
}

int py_spm_decode(const py_spm *m, const int32_t *ids, size_t n, char **text, size_t *len,
                  char *msg, size_t msg_len) {
  if (text) *text = nullptr;
  if (len) *len = 0;
  if (!m || !text || !len || (!ids && n)) return fail(msg, msg_len, PY_SPM_EINVAL, "bad arguments");
  return guarded(msg, msg_len, "decode", [&]() -> int {
    std::vector<int> v(n);
    int size = m->sp.GetPieceSize();
    for (size_t i = 0; i < n; i++) {
      if (ids[i] < 0 || ids[i] >= size)
        return fail(msg, msg_len, PY_SPM_EINVAL,
                    "decode: token " + std::to_string(i + 1) + ": id " + std::to_string(ids[i]) +
                        " is outside the vocabulary (0.." + std::to_string(size - 1) + ")");
      v[i] = ids[i];
    }
    std::string s;
    auto st = m->sp.Decode(v, &s);
    if (!st.ok()) return fail(msg, msg_len, PY_SPM_EINVAL, "decode: " + st.ToString());
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (!out) return fail(msg, msg_len, PY_SPM_ENOMEM, "decode: out of memory");
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = 0;
    *text = out;
    *len = s.size();
    return PY_SPM_OK;
  });
}

int py_spm_train(const char *const *sentences, const size_t *lens, size_t n,
                 const char *const *kv, unsigned seed, char **model, size_t *model_len,
                 char *msg, size_t msg_len) {
  if (model) *model = nullptr;
  if (model_len) *model_len = 0;
  if ((!sentences && n) || (!lens && n) || !model || !model_len)
    return fail(msg, msg_len, PY_SPM_EINVAL, "bad arguments");
  return guarded(msg, msg_len, "train", [&]() -> int {
    std::unordered_map<std::string, std::string> args;
    for (size_t i = 0; kv && kv[i]; i += 2) {
      if (!kv[i + 1]) return fail(msg, msg_len, PY_SPM_EINVAL, std::string("flag ") + kv[i] + " has no value");
      args[kv[i]] = kv[i + 1];
    }
    VectorIterator it(sentences, lens, n);
    std::string proto;
    sentencepiece::SetRandomGeneratorSeed(seed);
    sentencepiece::util::Status st;
    {
      QuietLogs quiet;
      st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
    }
    if (!st.ok()) return fail(msg, msg_len, PY_SPM_EINVAL, std::string("SentencePiece: ") + st.ToString());
    char *out = static_cast<char *>(std::malloc(proto.size() ? proto.size() : 1));
    if (!out) return fail(msg, msg_len, PY_SPM_ENOMEM, "train: out of memory");
    std::memcpy(out, proto.data(), proto.size());
    *model = out;
    *model_len = proto.size();
    return PY_SPM_OK;
  });
}

}  // extern "C"
