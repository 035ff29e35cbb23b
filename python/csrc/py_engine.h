// The Python-side engine handle (flashvsr._C.Engine), shared by the bindings that take an engine.
#pragma once

#include <flashvsr/flashvsr.h>

#include <memory>

namespace flashvsr::python {

/// close() drops the engine's weights (streams and jobs already started keep them alive).
struct PyEngine {
    std::shared_ptr<Engine> engine;
    Engine& get() const {
        if (!engine) {
            throw InputError("this engine was closed");
        }
        return *engine;
    }
};

}  // namespace flashvsr::python
