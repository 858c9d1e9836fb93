#include "tokenizer/byte_trie.h"

#include <algorithm>

namespace kiln::tokenizer {

void ByteTrie::insert(std::string_view key, int32_t id) {
  uint32_t node = 0;
  for (const char ch : key) {
    const auto b = static_cast<uint8_t>(ch);
    uint32_t next = 0;
    for (const auto& [byte, child] : building_[node].children) {
      if (byte == b) {
        next = child;
        break;
      }
    }
    if (next == 0) {
      next = static_cast<uint32_t>(building_.size());
      building_[node].children.emplace_back(b, next);
      building_.emplace_back();
    }
    node = next;
  }
  building_[node].id = id;
}

void ByteTrie::build() {
  nodes_.resize(building_.size());
  edge_bytes_.clear();
  edge_targets_.clear();
  for (size_t n = 0; n < building_.size(); ++n) {
    auto& children = building_[n].children;
    std::sort(children.begin(), children.end());
    nodes_[n] = Node{building_[n].id, static_cast<uint32_t>(edge_bytes_.size()),
                     static_cast<uint32_t>(children.size())};
    for (const auto& [byte, child] : children) {
      edge_bytes_.push_back(byte);
      edge_targets_.push_back(child);
    }
  }
  std::fill(std::begin(root_children_), std::end(root_children_), 0u);
  for (const auto& [byte, child] : building_[0].children) root_children_[byte] = child;
  building_.clear();
  building_.shrink_to_fit();
}

size_t ByteTrie::longest_prefix(std::string_view text, int32_t* id) const {
  if (text.empty() || nodes_.empty()) return 0;
  size_t best = 0;
  uint32_t node = root_children_[static_cast<uint8_t>(text[0])];
  size_t i = 1;
  while (node != 0) {
    const Node& n = nodes_[node];
    if (n.id >= 0) {
      best = i;
      *id = n.id;
    }
    if (i == text.size() || n.num_edges == 0) break;
    const auto b = static_cast<uint8_t>(text[i]);
    const uint8_t* first = edge_bytes_.data() + n.first_edge;
    const uint8_t* last = first + n.num_edges;
    const uint8_t* it =
        n.num_edges <= 8 ? std::find(first, last, b) : std::lower_bound(first, last, b);
    if (it == last || *it != b) break;
    node = edge_targets_[n.first_edge + static_cast<uint32_t>(it - first)];
    ++i;
  }
  return best;
}

}  // namespace kiln::tokenizer
