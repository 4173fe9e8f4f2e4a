"""The human side: bank transfers (AMLworld, AMLSim, mapped CSV), suspicious-activity reports and online ads."""
