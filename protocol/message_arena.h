// A protobuf arena over a 4 KiB block of its own, for one message at a time:
// a message created on it and dropped with Reset() costs no heap allocation
// while it fits the block (strings over 15 bytes still allocate their bytes).
// The server parses each request onto one, the client each response.
#pragma once

#include <array>

#include <google/protobuf/arena.h>

namespace idem::protocol {

class MessageArena {
 public:
  MessageArena() : arena_(Options(&block_)) {}
  MessageArena(const MessageArena&) = delete;
  MessageArena& operator=(const MessageArena&) = delete;

  template <typename Message>
  Message* Create() {
    return google::protobuf::Arena::CreateMessage<Message>(&arena_);
  }
  // Destroys every message created since the last Reset.
  void Reset() { arena_.Reset(); }

 private:
  static google::protobuf::ArenaOptions Options(std::array<char, 4096>* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block->data();
    options.initial_block_size = block->size();
    return options;
  }

  alignas(8) std::array<char, 4096> block_;  // before arena_, which uses it
  google::protobuf::Arena arena_;
};

// A message on a MessageArena that resets the arena when it goes out of scope.
template <typename Message>
class ScopedMessage {
 public:
  explicit ScopedMessage(MessageArena* arena) : arena_(arena), message_(arena->Create<Message>()) {}
  ~ScopedMessage() { arena_->Reset(); }
  ScopedMessage(const ScopedMessage&) = delete;
  ScopedMessage& operator=(const ScopedMessage&) = delete;

  Message* get() const { return message_; }
  Message* operator->() const { return message_; }
  Message& operator*() const { return *message_; }

 private:
  MessageArena* arena_;
  Message* message_;
};

}  // namespace idem::protocol
