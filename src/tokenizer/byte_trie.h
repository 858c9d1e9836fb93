// A compact byte trie for longest-prefix vocabulary lookups (WordPiece).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::tokenizer {

/// Maps byte strings to ids; finds the longest key that prefixes a text in one walk.
/// Immutable after build(); thread-safe for lookups.
class ByteTrie {
 public:
  /// Adds `key` -> `id` (a later insert of the same key wins). Only before build().
  void insert(std::string_view key, int32_t id);
  /// Freezes the trie into its flat lookup form.
  void build();
  /// Length of the longest key prefixing `text` and its id in `*id`; 0 when none.
  size_t longest_prefix(std::string_view text, int32_t* id) const;

 private:
  struct BuildNode {
    int32_t id = -1;
    std::vector<std::pair<uint8_t, uint32_t>> children;  // unsorted while building
  };
  struct Node {
    int32_t id;           // token id ending here, or -1
    uint32_t first_edge;  // index into edges_
    uint32_t num_edges;
  };
  std::vector<BuildNode> building_{BuildNode{}};
  std::vector<Node> nodes_;
  std::vector<uint8_t> edge_bytes_;  // sorted per node
  std::vector<uint32_t> edge_targets_;
  uint32_t root_children_[256] = {};  // 0 = none (the root is never a child)
};

}  // namespace kiln::tokenizer
