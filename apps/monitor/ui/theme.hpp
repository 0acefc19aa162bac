#pragma once

class QApplication;

namespace trellis::monitor {

/// The Fusion style with a dark or the standard light palette.
void apply_theme(QApplication& app, bool dark);

}  // namespace trellis::monitor
