// An operation's socket I/O done by the blocking caller it belongs to, on the caller's thread
// (client/runtime.hpp): the connection encodes the request on the io_context's thread, parks,
// the caller writes it and reads the reply with the stream's non-blocking calls, sleeping in
// poll(2) on the stream's wait_handle, and the connection goes on from there on the io_context.
#pragma once

#include <memory>

namespace trellis::conn {

class deferred_io {
public:
    /// On the caller's thread, with no one else touching the connection: writes the request and
    /// reads the whole reply, or stops at a failure, the timeout, or abort (close or interrupt:
    /// the caller's `wake_fd` is signalled). Never throws.
    virtual void perform(int wake_fd) noexcept = 0;
    /// With the io_context to itself (the baton held), from outside it: has the command
    /// completed from what perform() did, or, when it was not called, do the I/O the usual way
    /// (asynchronously), in a handler the io_context runs next.
    virtual void resume() = 0;

protected:
    ~deferred_io() = default;
};

/// Where a command's connection parks its I/O: the blocking call it runs for.
class io_parking {
public:
    /// Whether the caller takes the I/O now (a caller alone runs the io_context itself while it
    /// waits, so it gains nothing from it).
    virtual bool wants_io() const noexcept = 0;
    /// From the io_context, inside the command's start.
    virtual void park(std::shared_ptr<deferred_io> io) = 0;
    /// From the io_context: wakes the caller out of perform()'s poll (an abort).
    virtual void wake() noexcept = 0;

protected:
    ~io_parking() = default;
};

}  // namespace trellis::conn
